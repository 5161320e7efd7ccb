//! Tally's Wasm producer: serves the vote contract over HTTP and writes each vote to Kafka from
//! inside WasmEdge (docs/wasm.md). Build it for wasm32-wasip1 and run it with
//! `wasmedge --env KAFKA_BROKERS=host:9092 wasm_producer.wasm` (or its AOT-compiled form).
//!
//! This file is only the shell: one thread, one `poll_oneoff` loop over non-blocking sockets
//! (the HTTP listener, client connections, broker connections). What the bytes mean is the
//! library's business: `tally::conn` for a client connection (with `tally::http` and
//! `tally::api`), `tally::kafka::Producer` for brokers.

#[cfg(target_os = "wasi")]
mod sys;

#[cfg(not(target_os = "wasi"))]
fn main() -> std::process::ExitCode {
    eprintln!("wasm_producer runs on WasmEdge: build it for wasm32-wasip1 (docs/wasm.md)");
    std::process::ExitCode::FAILURE
}

#[cfg(target_os = "wasi")]
fn main() -> std::process::ExitCode {
    let settings = match tally::config::from_env(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("wasm producer: bad settings: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match sys::Socket::listen(settings.listen, 1024) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("wasm producer: listen on {}: {err}", settings.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    let ballot = match &settings.ballot {
        None => None,
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| tally::vote::Ballot::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(ballot) => Some(ballot),
            Err(err) => {
                eprintln!("wasm producer: ballot {path}: {err}");
                return std::process::ExitCode::from(2);
            }
        },
    };
    let brokers: Vec<String> =
        settings.kafka.bootstrap.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    // The real port, so that LISTEN_ADDR=127.0.0.1:0 is usable (tests read this line).
    let port = listener.local_port().unwrap_or(settings.listen.port());
    eprintln!(
        "wasm producer: listening on {}:{port}, kafka {}, ballot {}",
        settings.listen.ip(),
        brokers.join(","),
        settings.ballot.as_deref().unwrap_or("off (any well-formed vote is accepted)")
    );
    server::Server::new(listener, settings.kafka, settings.limits, settings.rate_limit, ballot)
        .run()
}

#[cfg(target_os = "wasi")]
mod server {
    use std::collections::HashMap;
    use std::process::ExitCode;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use tally::api::{self, Route};
    use tally::config::{Limits, RateLimit};
    use tally::conn::{Conn, Flushed, Next, Pending, Request};
    use tally::http::Response;
    use tally::kafka::{self, ConnId, Output, Producer, Ticket};
    use tally::metrics::{Gauges, Metrics};
    use tally::ratelimit::Limiter;
    use tally::vote::Ballot;

    use crate::sys::{self, Interest, Ready, Socket};

    const LISTENER: u64 = 0;
    /// Tokens at or above this are broker connections; below, clients.
    const KAFKA: u64 = 1 << 40;
    /// Connections accepted beyond the limit only to be answered 503 and closed; past these the
    /// listener waits (the kernel's backlog holds the rest).
    const OVERFLOW: usize = 256;
    /// How long accepting pauses after an accept error (out of file descriptors, say), so the
    /// still-readable listener does not spin the loop.
    const ACCEPT_PAUSE_MS: u64 = 100;

    /// A client connection: its socket, and what is said on it (`tally::conn`).
    struct Client {
        sock: Socket,
        conn: Conn,
    }

    struct Broker {
        sock: Socket,
        connecting: bool,
        outbuf: Vec<u8>,
    }

    pub struct Server {
        listener: Socket,
        clients: HashMap<u64, Client>,
        next_client: u64,
        brokers: HashMap<ConnId, Broker>,
        producer: Producer,
        tickets: HashMap<Ticket, u64>,
        next_ticket: Ticket,
        metrics: Metrics,
        epoch: Instant,
        scratch: Vec<u8>,
        limits: Limits,
        /// The per-client rate limit, when it is on.
        limiter: Option<Limiter>,
        ballot: Option<Ballot>,
        accept_paused_until: Option<Instant>,
    }

    fn wall_ms() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }

    impl Server {
        pub fn new(
            listener: Socket,
            config: kafka::Config,
            limits: Limits,
            rate_limit: Option<RateLimit>,
            ballot: Option<Ballot>,
        ) -> Self {
            let epoch = Instant::now();
            Server {
                listener,
                clients: HashMap::new(),
                next_client: 1,
                brokers: HashMap::new(),
                producer: Producer::new(config, 0),
                tickets: HashMap::new(),
                next_ticket: 1,
                metrics: Metrics::default(),
                epoch,
                scratch: vec![0; 64 << 10],
                limits,
                limiter: rate_limit.map(|r| Limiter::new(&r, epoch)),
                ballot,
                accept_paused_until: None,
            }
        }

        /// Milliseconds on the monotonic clock, for the producer's timers.
        fn now_ms(&self) -> u64 {
            self.epoch.elapsed().as_millis() as u64
        }

        pub fn run(mut self) -> ExitCode {
            let mut interests = Vec::new();
            let mut events = Vec::new();
            loop {
                self.pump();
                interests.clear();
                if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                    self.accept_paused_until = None;
                }
                if self.accept_paused_until.is_none()
                    && self.clients.len() < self.limits.max_connections + OVERFLOW
                {
                    interests.push(Interest {
                        token: LISTENER,
                        fd: self.listener.fd(),
                        read: true,
                        write: false,
                    });
                }
                for (&token, c) in &self.clients {
                    let read = c.conn.wants_read();
                    let write = !c.conn.output().is_empty();
                    if read || write {
                        interests.push(Interest { token, fd: c.sock.fd(), read, write });
                    }
                }
                for (&conn, b) in &self.brokers {
                    let write = b.connecting || !b.outbuf.is_empty();
                    interests.push(Interest {
                        token: KAFKA + conn,
                        fd: b.sock.fd(),
                        read: !b.connecting,
                        write,
                    });
                }
                let now = self.now_ms();
                let timeout = self
                    .producer
                    .next_wakeup()
                    .map_or(1_000, |at| at.saturating_sub(now))
                    .min(1_000);
                if let Err(err) = sys::poll(&interests, timeout, &mut events) {
                    eprintln!("wasm producer: poll: {err}");
                    return ExitCode::FAILURE;
                }
                for &(token, ready) in &events {
                    match token {
                        LISTENER => self.accept(),
                        t if t >= KAFKA => self.broker_event(t - KAFKA, ready),
                        t => self.client_event(t, ready),
                    }
                }
                let now = Instant::now();
                self.clients.retain(|_, c| !c.conn.expired(now));
            }
        }
        /// Runs the producer's timers and carries out what it asks, until it asks nothing more.
        fn pump(&mut self) {
            for _ in 0..16 {
                self.producer.tick(self.now_ms());
                let mut any = false;
                while let Some(output) = self.producer.poll_output() {
                    any = true;
                    match output {
                        Output::Connect { conn, host, port } => self.connect(conn, &host, port),
                        Output::Send { conn, bytes } => {
                            if let Some(b) = self.brokers.get_mut(&conn) {
                                b.outbuf.extend_from_slice(&bytes);
                                self.flush_broker(conn);
                            }
                        }
                        Output::Close { conn } => {
                            self.brokers.remove(&conn);
                        }
                        Output::Delivered { ticket, result } => self.delivered(ticket, result),
                        Output::Log(line) => eprintln!("wasm producer: {line}"),
                    }
                }
                if !any {
                    return;
                }
            }
        }

        fn connect(&mut self, conn: ConnId, host: &str, port: u16) {
            let now = self.now_ms();
            let addr = match sys::resolve(host, port) {
                Ok(addrs) => addrs[0],
                Err(err) => {
                    return self.producer.closed(conn, &format!("resolve {host}: {err}"), now)
                }
            };
            match Socket::connect(addr) {
                Ok((sock, connected)) => {
                    self.brokers
                        .insert(conn, Broker { sock, connecting: !connected, outbuf: Vec::new() });
                    if connected {
                        self.producer.connected(conn, now);
                    }
                }
                Err(err) => self.producer.closed(conn, &format!("connect {addr}: {err}"), now),
            }
        }

        fn broker_failed(&mut self, conn: ConnId, why: String) {
            self.brokers.remove(&conn);
            let now = self.now_ms();
            self.producer.closed(conn, &why, now);
        }

        fn flush_broker(&mut self, conn: ConnId) {
            let Some(b) = self.brokers.get_mut(&conn) else { return };
            if b.connecting {
                return;
            }
            while !b.outbuf.is_empty() {
                match b.sock.send(&b.outbuf) {
                    Ok(0) => return,
                    Ok(n) => {
                        b.outbuf.drain(..n);
                    }
                    Err(err) => return self.broker_failed(conn, format!("send: {err}")),
                }
            }
        }

        fn broker_event(&mut self, conn: ConnId, ready: Ready) {
            let now = self.now_ms();
            let Some(b) = self.brokers.get_mut(&conn) else { return };
            if b.connecting {
                if ready != Ready::Write {
                    return;
                }
                match b.sock.take_error() {
                    Ok(None) => {
                        b.connecting = false;
                        self.producer.connected(conn, now);
                        self.flush_broker(conn);
                    }
                    Ok(Some(code)) => {
                        let err = std::io::Error::from_raw_os_error(code);
                        self.broker_failed(conn, format!("connect: {err}"));
                    }
                    Err(err) => self.broker_failed(conn, format!("connect: {err}")),
                }
                return;
            }
            match ready {
                Ready::Write => self.flush_broker(conn),
                Ready::Read => loop {
                    let Some(b) = self.brokers.get_mut(&conn) else { return };
                    match b.sock.recv(&mut self.scratch) {
                        Ok(None) => return,
                        Ok(Some(0)) => {
                            return self.broker_failed(conn, "closed by the broker".into())
                        }
                        Ok(Some(n)) => self.producer.received(conn, &self.scratch[..n], now),
                        Err(err) => return self.broker_failed(conn, format!("recv: {err}")),
                    }
                },
            }
        }

        /// Takes every pending connection. Beyond the connection limit a newcomer is answered
        /// 503 with Retry-After at once and closed, instead of waiting unanswered in the backlog.
        fn accept(&mut self) {
            while self.clients.len() < self.limits.max_connections + OVERFLOW {
                match self.listener.accept() {
                    Ok(Some(sock)) => {
                        let peer =
                            sock.peer_ip().map_or_else(|_| "unknown".into(), |ip| ip.to_string());
                        let token = self.next_client;
                        self.next_client += 1;
                        let conn = Conn::new(peer, self.limits, Instant::now());
                        self.clients.insert(token, Client { sock, conn });
                        if self.clients.len() > self.limits.max_connections {
                            let pending = Pending::unparsed(Instant::now());
                            self.respond(token, &pending, api::too_many_connections(), true, false);
                            self.client_flush(token);
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        eprintln!("wasm producer: accept: {err}; pausing accepts");
                        self.accept_paused_until =
                            Some(Instant::now() + Duration::from_millis(ACCEPT_PAUSE_MS));
                        return;
                    }
                }
            }
        }

        fn client_event(&mut self, token: u64, ready: Ready) {
            match ready {
                Ready::Read => self.client_read(token),
                Ready::Write => self.client_flush(token),
            }
        }

        fn client_read(&mut self, token: u64) {
            let Some(c) = self.clients.get_mut(&token) else { return };
            while !c.conn.input_full() {
                match c.sock.recv(&mut self.scratch) {
                    Ok(None) => break,
                    Ok(Some(0)) => {
                        c.conn.end_of_stream();
                        break;
                    }
                    Ok(Some(n)) => c.conn.received(&self.scratch[..n]),
                    Err(_) => {
                        self.clients.remove(&token);
                        return;
                    }
                }
            }
            self.process(token);
            if self.clients.get(&token).is_some_and(|c| c.conn.finished()) {
                self.clients.remove(&token);
            }
        }

        fn client_flush(&mut self, token: u64) {
            let Some(c) = self.clients.get_mut(&token) else { return };
            while !c.conn.output().is_empty() {
                match c.sock.send(c.conn.output()) {
                    Ok(0) => return,
                    Ok(n) => c.conn.sent(n),
                    Err(_) => {
                        self.clients.remove(&token);
                        return;
                    }
                }
            }
            let close = match c.conn.flushed(Instant::now()) {
                Flushed::Open => false,
                Flushed::ShutWrite => c.sock.shutdown_write().is_err(),
                Flushed::Close => true,
            };
            if close {
                self.clients.remove(&token);
            }
        }

        /// Answers every whole request in the client's input, until one has to wait.
        fn process(&mut self, token: u64) {
            loop {
                let Some(c) = self.clients.get_mut(&token) else { return };
                let request = match c.conn.next(self.limiter.as_mut(), Instant::now()) {
                    Next::Wait => break,
                    Next::Refuse { pending, response } => {
                        self.respond(token, &pending, response, true, false);
                        break;
                    }
                    Next::Request(request) => request,
                };
                let response = match request.route {
                    Route::Healthz => api::healthz(),
                    Route::Readyz => api::readyz(self.producer.is_ready()),
                    Route::Metrics => {
                        let gauges = Gauges {
                            kafka_ready: self.producer.is_ready(),
                            pending_votes: self.producer.pending(),
                            open_connections: self.clients.len(),
                        };
                        api::metrics(self.metrics.render(self.producer.stats(), gauges))
                    }
                    Route::Vote => match self.vote(token, &request) {
                        Some(response) => response,
                        None => break, // waiting for Kafka
                    },
                };
                let head_only = request.head.method == "HEAD";
                self.respond(token, &request.pending, response, request.close, head_only);
            }
            self.client_flush(token);
        }

        /// Hands a valid vote to the producer (`None`), or says what to answer instead.
        fn vote(&mut self, token: u64, request: &Request) -> Option<Response> {
            let ballot = self.ballot.as_ref();
            let record =
                match api::vote(&request.head, &request.body, wall_ms(), sys::random(), ballot) {
                    Ok(record) => record,
                    Err(response) => return Some(response),
                };
            let message = match record.encode() {
                Ok(message) => message,
                Err(err) => {
                    eprintln!("wasm producer: encode vote {}: {err}", record.vote_id);
                    return Some(api::internal_error());
                }
            };
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            self.tickets.insert(ticket, token);
            let c = self.clients.get_mut(&token).expect("caller holds the client");
            c.conn.wait(ticket, record.vote_id, request);
            let now = self.now_ms();
            self.producer.send(ticket, message, now);
            None
        }

        fn delivered(&mut self, ticket: Ticket, result: Result<kafka::Delivery, kafka::Error>) {
            let Some(token) = self.tickets.remove(&ticket) else { return };
            let Some(c) = self.clients.get_mut(&token) else { return };
            let Some(delivered) = c.conn.delivered(ticket, Instant::now()) else { return };
            let response = match result {
                Ok(_) => api::accepted(&delivered.vote_id),
                Err(err) => {
                    self.metrics.refused();
                    eprintln!("wasm producer: vote {} not written: {err}", delivered.vote_id);
                    api::not_written(&err)
                }
            };
            let pending = Pending {
                method: "POST".into(),
                path: api::PATH_VOTES.into(),
                started: delivered.started,
            };
            self.respond(token, &pending, response, delivered.close, false);
            self.process(token);
        }

        /// Writes an answer to the client's output and counts it in the metrics.
        fn respond(
            &mut self,
            token: u64,
            pending: &Pending,
            response: Response,
            close: bool,
            head_only: bool,
        ) {
            let Some(c) = self.clients.get_mut(&token) else { return };
            let status = response.status;
            c.conn.respond(response, close, head_only, Instant::now());
            let seconds = pending.started.elapsed().as_secs_f64();
            self.metrics.observe(&pending.path, &pending.method, status, seconds);
        }
    }
}
