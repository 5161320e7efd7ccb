//! WasmEdge's socket host functions and the WASI calls the poll loop needs, bound directly.
//!
//! WasmEdge adds `sock_*` functions to the `wasi_snapshot_preview1` import module; the
//! signatures and structures below are those `wasmedge_wasi_socket` 0.5.5 uses (checked against
//! WasmEdge 0.17.1, docs/wasm.md). Binding them here instead of depending on that crate keeps
//! the build to one registry crate (httparse): the crate pulls in rand, libc, bytes and
//! dns-parser, and libc and zerocopy need build scripts we would have to run under Bazel.
//! IPv4 only, like the crate's connect.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

mod raw {
    /// WasmEdge's address argument: a pointer to the address bytes and their length.
    #[repr(C)]
    pub struct Address {
        pub buf: *const u8,
        pub size: usize,
    }

    #[repr(C)]
    pub struct IoVec {
        pub buf: *const u8,
        pub size: usize,
    }

    #[repr(C)]
    pub struct SockAddr {
        pub family: u8,
        pub sa_data_len: u32,
        pub sa_data: *mut u8,
    }

    #[repr(C, packed(4))]
    pub struct AddrInfo {
        pub ai_flags: u16,
        pub ai_family: u8,
        pub ai_socktype: u8,
        pub ai_protocol: u8,
        pub ai_addrlen: u32,
        pub ai_addr: *mut SockAddr,
        pub ai_canonname: *mut u8,
        pub ai_canonnamelen: u32,
        pub ai_next: *mut AddrInfo,
    }

    /// WASI `subscription`: userdata, then a tagged union (clock or fd) at offset 8.
    #[repr(C)]
    pub struct Subscription {
        pub userdata: u64,
        pub tag: u8,
        pub pad: [u8; 7],
        pub body: [u64; 4],
    }

    /// WASI `event`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct Event {
        pub userdata: u64,
        pub error: u16,
        pub kind: u8,
        pub pad: [u8; 5],
        pub nbytes: u64,
        pub flags: u16,
        pub pad2: [u8; 6],
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn sock_open(family: u8, kind: u8, fd: *mut u32) -> u32;
        pub fn sock_bind(fd: u32, addr: *const Address, port: u32) -> u32;
        pub fn sock_listen(fd: u32, backlog: u32) -> u32;
        pub fn sock_accept(fd: u32, new_fd: *mut u32) -> u32;
        pub fn sock_connect(fd: u32, addr: *const Address, port: u32) -> u32;
        pub fn sock_recv(
            fd: u32,
            iovs: *const IoVec,
            iovs_len: usize,
            flags: u16,
            received: *mut usize,
            oflags: *mut usize,
        ) -> u32;
        pub fn sock_send(
            fd: u32,
            iovs: *const IoVec,
            iovs_len: u32,
            flags: u16,
            sent: *mut u32,
        ) -> u32;
        pub fn sock_shutdown(fd: u32, how: u8) -> u32;
        pub fn sock_getlocaladdr(
            fd: u32,
            addr: *mut Address,
            addr_type: *mut u32,
            port: *mut u32,
        ) -> u32;
        pub fn sock_getpeeraddr(
            fd: u32,
            addr: *mut Address,
            addr_type: *mut u32,
            port: *mut u32,
        ) -> u32;
        pub fn sock_getsockopt(
            fd: u32,
            level: i32,
            name: i32,
            value: *mut i32,
            len: *mut u32,
        ) -> u32;
        pub fn sock_setsockopt(fd: u32, level: i32, name: i32, value: *const i32, len: u32) -> u32;
        pub fn sock_getaddrinfo(
            node: *const u8,
            node_len: u32,
            service: *const u8,
            service_len: u32,
            hints: *const AddrInfo,
            res: *mut u32,
            max_len: u32,
            res_len: *mut u32,
        ) -> u32;
        pub fn fd_fdstat_set_flags(fd: u32, flags: u16) -> u16;
        pub fn fd_close(fd: u32) -> u16;
        pub fn poll_oneoff(
            subs: *const Subscription,
            events: *mut Event,
            n: u32,
            nevents: *mut u32,
        ) -> u16;
        pub fn random_get(buf: *mut u8, len: usize) -> u16;
    }
}

const AF_INET4: u8 = 1;
const SOCK_STREAM: u8 = 2;
const SOL_SOCKET: i32 = 0;
const SO_REUSEADDR: i32 = 0;
const SO_ERROR: i32 = 2;
const FDFLAGS_NONBLOCK: u16 = 1 << 2;
const SHUT_WR: u8 = 2;
const ERRNO_AGAIN: u32 = 6;
const ERRNO_INPROGRESS: u32 = 26;

fn check(errno: u32) -> io::Result<()> {
    match errno {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// A non-blocking TCP socket; closed on drop.
#[derive(Debug)]
pub struct Socket {
    fd: u32,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { raw::fd_close(self.fd) };
    }
}

fn address(ip: &Ipv4Addr) -> ([u8; 4], usize) {
    (ip.octets(), 4)
}

impl Socket {
    fn open() -> io::Result<Socket> {
        let mut fd = 0;
        // SAFETY: fd is a valid out pointer.
        check(unsafe { raw::sock_open(AF_INET4, SOCK_STREAM, &mut fd) })?;
        let socket = Socket { fd };
        socket.set_nonblocking()?;
        Ok(socket)
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        // SAFETY: plain call on our descriptor.
        check(u32::from(unsafe { raw::fd_fdstat_set_flags(self.fd, FDFLAGS_NONBLOCK) }))
    }

    pub fn fd(&self) -> u32 {
        self.fd
    }

    /// A listening socket on `addr`.
    pub fn listen(addr: SocketAddrV4, backlog: u32) -> io::Result<Socket> {
        let socket = Socket::open()?;
        let one = 1i32;
        // SAFETY: the option value outlives the call.
        check(unsafe { raw::sock_setsockopt(socket.fd, SOL_SOCKET, SO_REUSEADDR, &one, 4) })?;
        let (ip, size) = address(addr.ip());
        let address = raw::Address { buf: ip.as_ptr(), size };
        // SAFETY: the address bytes outlive the call.
        check(unsafe { raw::sock_bind(socket.fd, &address, u32::from(addr.port())) })?;
        // SAFETY: plain call.
        check(unsafe { raw::sock_listen(socket.fd, backlog) })?;
        Ok(socket)
    }

    /// The address of the connection's other end (WasmEdge's `sock_getpeeraddr`).
    pub fn peer_ip(&self) -> io::Result<std::net::Ipv4Addr> {
        let buf = [0u8; 16];
        let mut address = raw::Address { buf: buf.as_ptr(), size: buf.len() };
        let (mut kind, mut port) = (0u32, 0u32);
        // SAFETY: the host writes at most 16 bytes into buf; the other out pointers are valid.
        check(unsafe { raw::sock_getpeeraddr(self.fd, &mut address, &mut kind, &mut port) })?;
        Ok(std::net::Ipv4Addr::new(buf[0], buf[1], buf[2], buf[3]))
    }

    /// The port the socket is bound to (useful after binding port 0).
    pub fn local_port(&self) -> io::Result<u16> {
        let buf = [0u8; 16];
        let mut address = raw::Address { buf: buf.as_ptr(), size: buf.len() };
        let (mut kind, mut port) = (0u32, 0u32);
        // SAFETY: the host writes at most 16 bytes into buf; the other out pointers are valid.
        check(unsafe { raw::sock_getlocaladdr(self.fd, &mut address, &mut kind, &mut port) })?;
        Ok(port as u16)
    }

    /// The next pending connection, or `None` when there is none right now.
    pub fn accept(&self) -> io::Result<Option<Socket>> {
        let mut fd = 0;
        // SAFETY: fd is a valid out pointer.
        match unsafe { raw::sock_accept(self.fd, &mut fd) } {
            0 => {
                let socket = Socket { fd };
                socket.set_nonblocking()?;
                Ok(Some(socket))
            }
            ERRNO_AGAIN => Ok(None),
            e => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// Starts connecting; `Ok(true)` if already connected, `Ok(false)` if the socket will turn
    /// writable when done (then ask [`Socket::take_error`]).
    pub fn connect(addr: SocketAddrV4) -> io::Result<(Socket, bool)> {
        let socket = Socket::open()?;
        let (ip, size) = address(addr.ip());
        let address = raw::Address { buf: ip.as_ptr(), size };
        // SAFETY: the address bytes outlive the call.
        match unsafe { raw::sock_connect(socket.fd, &address, u32::from(addr.port())) } {
            0 => Ok((socket, true)),
            ERRNO_INPROGRESS | ERRNO_AGAIN => Ok((socket, false)),
            e => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// The pending error of a connect in progress (SO_ERROR), if any.
    pub fn take_error(&self) -> io::Result<Option<i32>> {
        let (mut value, mut len) = (0i32, 4u32);
        // SAFETY: both out pointers are valid.
        check(unsafe {
            raw::sock_getsockopt(self.fd, SOL_SOCKET, SO_ERROR, &mut value, &mut len)
        })?;
        Ok((value != 0).then_some(value))
    }

    /// Reads into `buf`: `Ok(None)` when nothing is there now, `Ok(Some(0))` at end of stream.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let iov = raw::IoVec { buf: buf.as_mut_ptr(), size: buf.len() };
        let (mut received, mut oflags) = (0usize, 0usize);
        // SAFETY: the iovec points into buf, which outlives the call.
        match unsafe { raw::sock_recv(self.fd, &iov, 1, 0, &mut received, &mut oflags) } {
            0 => Ok(Some(received)),
            ERRNO_AGAIN => Ok(None),
            e => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// Writes what the socket takes now: how much, 0 when it takes nothing.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let iov = raw::IoVec { buf: buf.as_ptr(), size: buf.len() };
        let mut sent = 0u32;
        // SAFETY: the iovec points into buf, which outlives the call.
        match unsafe { raw::sock_send(self.fd, &iov, 1, 0, &mut sent) } {
            0 => Ok(sent as usize),
            ERRNO_AGAIN => Ok(0),
            e => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// Ends our side of the stream, keeping the read side open.
    pub fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: plain call.
        check(unsafe { raw::sock_shutdown(self.fd, SHUT_WR) })
    }
}

/// IPv4 addresses of `host` (an IPv4 literal, or a name resolved through WasmEdge's
/// `sock_getaddrinfo`, which uses the host's resolver). Blocks while it resolves.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddrV4>> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(vec![SocketAddrV4::new(ip, port)]);
    }
    const MAX: usize = 8;
    let node = format!("{host}\0");
    let service = format!("{port}\0");
    let mut data = [[0u8; 26]; MAX];
    let mut addrs: Vec<raw::SockAddr> = data
        .iter_mut()
        .map(|d| raw::SockAddr { family: 0, sa_data_len: 14, sa_data: d.as_mut_ptr() })
        .collect();
    let mut canon = [[0u8; 30]; MAX];
    let mut infos: Vec<raw::AddrInfo> = (0..MAX)
        .map(|i| raw::AddrInfo {
            ai_flags: 0,
            ai_family: AF_INET4,
            ai_socktype: SOCK_STREAM,
            ai_protocol: 1, // TCP
            ai_addrlen: 0,
            ai_addr: &mut addrs[i],
            ai_canonname: canon[i].as_mut_ptr(),
            ai_canonnamelen: 30,
            ai_next: std::ptr::null_mut(),
        })
        .collect();
    for i in 1..MAX {
        let next: *mut raw::AddrInfo = &mut infos[i];
        infos[i - 1].ai_next = next;
    }
    let hints = raw::AddrInfo {
        ai_flags: 0,
        ai_family: AF_INET4,
        ai_socktype: SOCK_STREAM,
        ai_protocol: 1,
        ai_addrlen: 0,
        ai_addr: std::ptr::null_mut(),
        ai_canonname: std::ptr::null_mut(),
        ai_canonnamelen: 0,
        ai_next: std::ptr::null_mut(),
    };
    let mut res = infos.as_mut_ptr() as u32;
    let mut count = 0u32;
    // SAFETY: every pointer refers to buffers above that outlive the call; the host fills at most
    // MAX entries of the linked list we built.
    check(unsafe {
        raw::sock_getaddrinfo(
            node.as_ptr(),
            node.len() as u32,
            service.as_ptr(),
            service.len() as u32,
            &hints,
            &mut res,
            MAX as u32,
            &mut count,
        )
    })?;
    let mut out = Vec::new();
    for i in 0..(count as usize).min(MAX) {
        let info_len = infos[i].ai_addrlen;
        if info_len == 0 || addrs[i].family != AF_INET4 {
            continue;
        }
        let d = &data[i];
        out.push(SocketAddrV4::new(Ipv4Addr::new(d[2], d[3], d[4], d[5]), port));
    }
    if out.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no IPv4 address for {host}")));
    }
    Ok(out)
}

/// What a socket is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    Read,
    Write,
}

/// One socket to watch: `token` comes back with its events.
#[derive(Debug, Clone, Copy)]
pub struct Interest {
    pub token: u64,
    pub fd: u32,
    pub read: bool,
    pub write: bool,
}

/// Waits until a socket is ready or `timeout_ms` passes (WASI `poll_oneoff`).
pub fn poll(
    interests: &[Interest],
    timeout_ms: u64,
    events: &mut Vec<(u64, Ready)>,
) -> io::Result<()> {
    const CLOCK: u8 = 0;
    const FD_READ: u8 = 1;
    const FD_WRITE: u8 = 2;
    const CLOCK_MONOTONIC: u64 = 1;
    let mut subs = Vec::with_capacity(interests.len() * 2 + 1);
    subs.push(raw::Subscription {
        userdata: u64::MAX,
        tag: CLOCK,
        pad: [0; 7],
        body: [CLOCK_MONOTONIC, timeout_ms.saturating_mul(1_000_000), 0, 0],
    });
    for i in interests {
        for (wanted, tag) in [(i.read, FD_READ), (i.write, FD_WRITE)] {
            if wanted {
                subs.push(raw::Subscription {
                    userdata: i.token,
                    tag,
                    pad: [0; 7],
                    body: [u64::from(i.fd), 0, 0, 0],
                });
            }
        }
    }
    let empty = raw::Event {
        userdata: 0,
        error: 0,
        kind: 0,
        pad: [0; 5],
        nbytes: 0,
        flags: 0,
        pad2: [0; 6],
    };
    let mut out = vec![empty; subs.len()];
    let mut n = 0u32;
    // SAFETY: subs and out have subs.len() entries each.
    check(u32::from(unsafe {
        raw::poll_oneoff(subs.as_ptr(), out.as_mut_ptr(), subs.len() as u32, &mut n)
    }))?;
    events.clear();
    for event in &out[..n as usize] {
        match event.kind {
            FD_READ => events.push((event.userdata, Ready::Read)),
            // An error or hangup on a write interest shows up on the next read or write.
            FD_WRITE => events.push((event.userdata, Ready::Write)),
            _ => {}
        }
    }
    Ok(())
}

/// Random bytes from the host (WASI `random_get`).
pub fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SAFETY: buf has N bytes.
    let errno = unsafe { raw::random_get(buf.as_mut_ptr(), N) };
    assert_eq!(errno, 0, "random_get failed");
    buf
}
