//! Tally's Wasm producer: serves the vote contract over HTTP and writes each vote to Kafka from
//! inside WasmEdge (docs/wasm.md). Build it for wasm32-wasip1 and run it with
//! `wasmedge --env KAFKA_BROKERS=host:9092 wasm_producer.wasm` (or its AOT-compiled form).
//!
//! This file is only the shell: one thread, one `poll_oneoff` loop over non-blocking sockets
//! (the HTTP listener, client connections, broker connections), with per-connection buffers.
//! What the bytes mean is the library's business: `tally::http` and `tally::api` for clients,
//! `tally::kafka::Producer` for brokers.

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
    use tally::http::{self, Head, Response};
    use tally::kafka::{self, ConnId, Output, Producer, Ticket};
    use tally::metrics::{Gauges, Metrics};
    use tally::ratelimit::{self, Buckets};
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
    /// Stop reading a client that has this much unprocessed input (pipelining flood).
    const MAX_CLIENT_INPUT: usize = 64 << 10;
    /// How long a closing connection's input is drained so the client can read our answer.
    const LINGER_MS: u64 = 2_000;

    enum State {
        /// Waiting for (the rest of) a request.
        Reading { continue_sent: bool },
        /// The vote is with Kafka; the response comes with its delivery.
        Waiting { ticket: Ticket, vote_id: String, started: Instant, keep_alive: bool },
        /// Write what is left, then drain.
        Closing,
        /// Our side is shut; read and drop input until the client closes or time is up.
        Draining { until: Instant },
    }

    /// What a reading connection's deadline is for.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Phase {
        /// Between requests of a keep-alive connection: no byte of the next one yet.
        Idle,
        /// Part of a request head has arrived (or the connection is new).
        Head,
        /// The head is in; the body is not.
        Body,
    }

    struct Client {
        sock: Socket,
        inbuf: Vec<u8>,
        outbuf: Vec<u8>,
        state: State,
        phase: Phase,
        /// While Reading, the end of the phase's time; while Closing, the end of the time the
        /// client has to read our answer. Waiting and Draining have their own bounds.
        deadline: Instant,
        /// The client has half-closed: answer what is pending, then close.
        eof: bool,
        /// The peer's IP address, for the rate limit.
        peer: String,
        /// The rate limit's decision on the request being read (taken once per request, at its
        /// head): `Err` holds the seconds to wait.
        admission: Option<Result<(), u64>>,
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
        /// The rate limit's buckets and trusted proxy hops, when it is on.
        rate: Option<(Buckets, usize)>,
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
            let rate = rate_limit
                .map(|r| (Buckets::new(r.per_second, r.burst, r.max_clients), r.trusted_hops));
            Server {
                listener,
                clients: HashMap::new(),
                next_client: 1,
                brokers: HashMap::new(),
                producer: Producer::new(config, 0),
                tickets: HashMap::new(),
                next_ticket: 1,
                metrics: Metrics::default(),
                epoch: Instant::now(),
                scratch: vec![0; 64 << 10],
                limits,
                rate,
                ballot,
                accept_paused_until: None,
            }
        }

        fn after(&self, ms: u64) -> Instant {
            Instant::now() + Duration::from_millis(ms)
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
                    // Never poll for reading after end of stream: it would be ready forever.
                    let read = !c.eof
                        && match c.state {
                            State::Reading { .. } | State::Draining { .. } => true,
                            State::Waiting { .. } => c.inbuf.len() < MAX_CLIENT_INPUT,
                            State::Closing => false,
                        };
                    let write = !c.outbuf.is_empty();
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
                self.housekeeping();
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
                        let client = Client {
                            sock,
                            inbuf: Vec::new(),
                            outbuf: Vec::new(),
                            state: State::Reading { continue_sent: false },
                            phase: Phase::Head,
                            deadline: self.after(self.limits.header_timeout_ms),
                            eof: false,
                            peer,
                            admission: None,
                        };
                        self.clients.insert(token, client);
                        if self.clients.len() > self.limits.max_connections {
                            self.respond(
                                token,
                                &Pending::unparsed(),
                                api::too_many_connections(),
                                true,
                            );
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        eprintln!("wasm producer: accept: {err}; pausing accepts");
                        self.accept_paused_until = Some(self.after(ACCEPT_PAUSE_MS));
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
            loop {
                if c.inbuf.len() >= MAX_CLIENT_INPUT && !matches!(c.state, State::Draining { .. }) {
                    break;
                }
                match c.sock.recv(&mut self.scratch) {
                    Ok(None) => break,
                    Ok(Some(0)) => {
                        c.eof = true;
                        break;
                    }
                    Ok(Some(n)) => {
                        if !matches!(c.state, State::Draining { .. }) {
                            c.inbuf.extend_from_slice(&self.scratch[..n]);
                        }
                    }
                    Err(_) => {
                        self.clients.remove(&token);
                        return;
                    }
                }
            }
            if c.eof && matches!(c.state, State::Draining { .. }) {
                self.clients.remove(&token);
                return;
            }
            self.process(token);
            // A client that has finished sending and is owed nothing more is done.
            if let Some(c) = self.clients.get(&token) {
                if c.eof && c.outbuf.is_empty() && matches!(c.state, State::Reading { .. }) {
                    self.clients.remove(&token);
                }
            }
        }

        fn client_flush(&mut self, token: u64) {
            let Some(c) = self.clients.get_mut(&token) else { return };
            while !c.outbuf.is_empty() {
                match c.sock.send(&c.outbuf) {
                    Ok(0) => return,
                    Ok(n) => {
                        c.outbuf.drain(..n);
                    }
                    Err(_) => {
                        self.clients.remove(&token);
                        return;
                    }
                }
            }
            if matches!(c.state, State::Closing) {
                // Shut our side and keep reading for a while: closing with unread input would
                // reset the connection and could destroy the answer before the client reads it.
                if c.eof || c.sock.shutdown_write().is_err() {
                    self.clients.remove(&token);
                    return;
                }
                c.inbuf.clear();
                c.state =
                    State::Draining { until: Instant::now() + Duration::from_millis(LINGER_MS) };
            } else if c.eof && matches!(c.state, State::Reading { .. }) {
                self.clients.remove(&token);
            }
        }

        /// Answers every complete request in the client's buffer, until one has to wait.
        fn process(&mut self, token: u64) {
            loop {
                let Some(c) = self.clients.get_mut(&token) else { return };
                let State::Reading { continue_sent } = c.state else { break };
                let head = match http::parse_head(&c.inbuf) {
                    Ok(Some(head)) => head,
                    // The client stopped sending in the middle of a head: Go's net/http answers 400
                    // (stray line ends between requests excepted), so this does too.
                    Ok(None) if c.eof && c.inbuf.iter().any(|&b| b != b'\r' && b != b'\n') => {
                        let err = http::Error::Malformed("unexpected EOF".into());
                        self.respond(token, &Pending::unparsed(), api::bad_request(&err), true);
                        break;
                    }
                    Ok(None) => {
                        if c.phase == Phase::Idle && !c.inbuf.is_empty() {
                            c.phase = Phase::Head;
                            c.deadline = Instant::now()
                                + Duration::from_millis(self.limits.header_timeout_ms);
                        }
                        break;
                    }
                    Err(err) => {
                        self.respond(token, &Pending::unparsed(), api::bad_request(&err), true);
                        break;
                    }
                };
                let started = Instant::now();
                let pending =
                    Pending { method: head.method.clone(), path: head.path.clone(), started };
                // Like the Go front's middleware: before any other check of the request.
                if head.path == api::PATH_VOTES && c.admission.is_none() {
                    if let Some((buckets, hops)) = self.rate.as_mut() {
                        let client = ratelimit::client_addr(&head.forwarded_for, &c.peer, *hops);
                        let now_ms = self.epoch.elapsed().as_millis() as u64;
                        c.admission = Some(buckets.take(&client, now_ms));
                    }
                }
                let route = match c.admission {
                    Some(Err(wait)) => Err(api::too_many_requests(wait)),
                    _ => api::route(&head),
                };
                // Refused before its body: answered at once, and the connection closed (its
                // body is not read, so where a next request would start is not known).
                if let Err(response) = route {
                    self.respond(token, &pending, response, true);
                    break;
                }
                // Health and metrics do not read a body: with one, they answer at once and close
                // the connection, as the Go front does.
                let bodiless = route != Ok(Route::Vote) && head.framing != http::Framing::Length(0);
                let read = if bodiless {
                    Ok(Some(http::Body { bytes: Vec::new(), consumed: 0 }))
                } else {
                    http::read_body(head.framing, &c.inbuf[head.len..], api::MAX_BODY)
                };
                let body = match read {
                    Ok(Some(body)) => body,
                    Ok(None) => {
                        if c.phase != Phase::Body {
                            c.phase = Phase::Body;
                            c.deadline =
                                Instant::now() + Duration::from_millis(self.limits.body_timeout_ms);
                        }
                        match &route {
                            // The client has stopped sending: the body will not come.
                            _ if c.eof => {
                                self.respond(token, &pending, api::body_unreadable(), true);
                            }
                            Ok(_) if head.expect_continue && !continue_sent => {
                                c.outbuf.extend_from_slice(http::CONTINUE);
                                c.state = State::Reading { continue_sent: true };
                                self.client_flush(token);
                            }
                            _ => {}
                        }
                        break;
                    }
                    Err(err) => {
                        self.respond(token, &pending, api::bad_body(&err), true);
                        break;
                    }
                };
                c.inbuf.drain(..head.len + body.consumed);
                c.state = State::Reading { continue_sent: false };
                c.admission = None;
                c.phase = Phase::Idle;
                c.deadline = Instant::now() + Duration::from_millis(self.limits.idle_timeout_ms);
                let close = bodiless || !head.keep_alive || (c.eof && c.inbuf.is_empty());
                let response = match route {
                    Err(response) => response,
                    Ok(Route::Healthz) => api::healthz(),
                    Ok(Route::Readyz) => api::readyz(self.producer.is_ready()),
                    Ok(Route::Metrics) => {
                        let gauges = Gauges {
                            kafka_ready: self.producer.is_ready(),
                            pending_votes: self.producer.pending(),
                            open_connections: self.clients.len(),
                        };
                        api::metrics(self.metrics.render(self.producer.stats(), gauges))
                    }
                    Ok(Route::Vote) => match self.vote(token, &head, &body.bytes, started, close) {
                        Some(response) => response,
                        None => break, // waiting for Kafka
                    },
                };
                let head_only = head.method == "HEAD";
                self.respond_with(token, &pending, response, close, head_only);
            }
            self.client_flush(token);
        }

        /// Hands a valid vote to the producer (`None`), or says what to answer instead.
        fn vote(
            &mut self,
            token: u64,
            head: &Head,
            body: &[u8],
            started: Instant,
            close: bool,
        ) -> Option<Response> {
            let ballot = self.ballot.as_ref();
            let record = match api::vote(head, body, wall_ms(), sys::random(), ballot) {
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
            c.state =
                State::Waiting { ticket, vote_id: record.vote_id, started, keep_alive: !close };
            let now = self.now_ms();
            self.producer.send(ticket, message, now);
            None
        }

        fn delivered(&mut self, ticket: Ticket, result: Result<kafka::Delivery, kafka::Error>) {
            let Some(token) = self.tickets.remove(&ticket) else { return };
            let Some(c) = self.clients.get_mut(&token) else { return };
            let State::Waiting { ticket: waiting, ref vote_id, started, keep_alive } = c.state
            else {
                return;
            };
            if waiting != ticket {
                return;
            }
            let response = match result {
                Ok(_) => api::accepted(vote_id),
                Err(err) => {
                    self.metrics.refused();
                    eprintln!("wasm producer: vote {vote_id} not written: {err}");
                    api::not_written(&err)
                }
            };
            let pending = Pending { method: "POST".into(), path: api::PATH_VOTES.into(), started };
            c.state = State::Reading { continue_sent: false };
            c.phase = Phase::Idle;
            c.deadline = Instant::now() + Duration::from_millis(self.limits.idle_timeout_ms);
            let close = !keep_alive || (c.eof && c.inbuf.is_empty());
            self.respond_with(token, &pending, response, close, false);
            self.process(token);
        }

        fn respond(&mut self, token: u64, pending: &Pending, response: Response, close: bool) {
            self.respond_with(token, pending, response, close, false);
            self.client_flush(token);
        }

        fn respond_with(
            &mut self,
            token: u64,
            pending: &Pending,
            mut response: Response,
            close: bool,
            head_only: bool,
        ) {
            let Some(c) = self.clients.get_mut(&token) else { return };
            response.close = close;
            response.write(&mut c.outbuf, head_only);
            let seconds = pending.started.elapsed().as_secs_f64();
            self.metrics.observe(&pending.path, &pending.method, response.status, seconds);
            if close {
                c.state = State::Closing;
                // A client that does not read its answer gets no longer than an idle one.
                c.deadline = Instant::now() + Duration::from_millis(self.limits.idle_timeout_ms);
            }
        }

        /// Closes connections past their deadline: slow heads and bodies, idle keep-alives,
        /// answers nobody reads, finished drains. A vote waiting for Kafka is bounded by the
        /// producer's delivery timeout instead.
        fn housekeeping(&mut self) {
            let now = Instant::now();
            self.clients.retain(|_, c| match c.state {
                State::Draining { until } => now < until,
                State::Reading { .. } | State::Closing => now < c.deadline,
                State::Waiting { .. } => true,
            });
        }
    }

    /// A request being answered, for metrics.
    struct Pending {
        method: String,
        path: String,
        started: Instant,
    }

    impl Pending {
        fn unparsed() -> Pending {
            Pending { method: "other".into(), path: "other".into(), started: Instant::now() }
        }
    }
}
