//! One client connection of the Wasm producer, without its socket: its input and output bytes,
//! where each request ends (framing), `100 Continue`, the client's end of stream, the rate
//! limit's admission, and the deadline of each phase. The binary's poll loop moves bytes between
//! a `Conn` and its socket and answers the requests it hands out (health, readiness, metrics,
//! votes through Kafka). The caller passes the time in, so all of it is tested on the host.

use std::time::{Duration, Instant};

use crate::api::{self, Route};
use crate::config::Limits;
use crate::http::{self, Head, Response};
use crate::kafka::Ticket;
use crate::ratelimit::Limiter;

/// Reading stops while this much input is unprocessed (a pipelining flood).
pub const MAX_INPUT: usize = 64 << 10;
/// How long a closing connection's input is drained so the client can read our answer: closing
/// with unread input would reset the connection and could destroy the answer first.
pub const LINGER: Duration = Duration::from_secs(2);

#[derive(Debug)]
enum State {
    /// Waiting for (the rest of) a request.
    Reading { continue_sent: bool },
    /// The vote is with Kafka; the answer comes with its delivery.
    Waiting { ticket: Ticket, vote_id: String, started: Instant, keep_alive: bool },
    /// Write what is left, then shut our side.
    Closing,
    /// Our side is shut; input is read and dropped until the client closes or time is up.
    Draining { until: Instant },
}

/// What a reading connection's deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests of a keep-alive connection: no byte of the next one yet.
    Idle,
    /// Part of a request head has arrived (or the connection is new).
    Head,
    /// The head is in; the body is not.
    Body,
}

/// A request being answered, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub method: String,
    pub path: String,
    /// When its head was read.
    pub started: Instant,
}

impl Pending {
    /// A request whose head could not be read.
    pub fn unparsed(now: Instant) -> Pending {
        Pending { method: "other".into(), path: "other".into(), started: now }
    }
}

/// A whole request for the server to answer, with [`Conn::respond`] or, for a vote handed to
/// Kafka, [`Conn::wait`].
#[derive(Debug)]
pub struct Request {
    pub route: Route,
    pub head: Head,
    pub body: Vec<u8>,
    pub pending: Pending,
    /// The connection closes after the answer.
    pub close: bool,
}

/// What [`Conn::next`] found in the input.
#[derive(Debug)]
pub enum Next {
    /// No whole request (a `100 Continue` may be in the output): wait for input or a delivery.
    Wait,
    /// The connection's own answer, after which it closes: a malformed head, a refused request
    /// (its body is not read, so where a next request would start is not known), a body that
    /// will not come.
    Refuse {
        pending: Pending,
        response: Response,
    },
    Request(Request),
}

/// What to do with the socket once the output is all written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    Open,
    /// Shut our side of the socket; the connection drains the client's input for [`LINGER`].
    ShutWrite,
    Close,
}

/// A vote's delivery, for the answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivered {
    pub vote_id: String,
    pub started: Instant,
    pub close: bool,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    input: Vec<u8>,
    output: Vec<u8>,
    state: State,
    phase: Phase,
    /// While Reading, the end of the phase's time; while Closing, the end of the time the client
    /// has to read our answer. Waiting and Draining have their own bounds.
    deadline: Instant,
    /// The client has half-closed: answer what is pending, then close.
    eof: bool,
    /// The peer's IP address, for the rate limit.
    peer: String,
    /// The rate limit's decision on the request being read, taken once per request at its head:
    /// `Err` holds the seconds to wait.
    admission: Option<Result<(), u64>>,
    limits: Limits,
}

impl Conn {
    /// A connection just accepted from `peer`: it has the header timeout to send a head.
    pub fn new(peer: String, limits: Limits, now: Instant) -> Conn {
        Conn {
            input: Vec::new(),
            output: Vec::new(),
            state: State::Reading { continue_sent: false },
            phase: Phase::Head,
            deadline: now + ms(limits.header_timeout_ms),
            eof: false,
            peer,
            admission: None,
            limits,
        }
    }

    fn draining(&self) -> bool {
        matches!(self.state, State::Draining { .. })
    }

    /// Whether to poll the socket for reading. Never after end of stream: it would be ready
    /// forever.
    pub fn wants_read(&self) -> bool {
        !self.eof
            && match self.state {
                State::Reading { .. } | State::Draining { .. } => true,
                State::Waiting { .. } => self.input.len() < MAX_INPUT,
                State::Closing => false,
            }
    }

    /// Whether reading should stop for now: the input is full of unprocessed requests.
    pub fn input_full(&self) -> bool {
        self.input.len() >= MAX_INPUT && !self.draining()
    }

    /// Bytes read from the client (dropped while draining).
    pub fn received(&mut self, bytes: &[u8]) {
        if !self.draining() {
            self.input.extend_from_slice(bytes);
        }
    }

    /// The client has finished sending.
    pub fn end_of_stream(&mut self) {
        self.eof = true;
    }

    /// What is to be written to the client.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// `n` bytes of the output were written.
    pub fn sent(&mut self, n: usize) {
        self.output.drain(..n);
    }

    /// The output is all written: what now. A closing connection starts draining.
    pub fn flushed(&mut self, now: Instant) -> Flushed {
        debug_assert!(self.output.is_empty());
        match self.state {
            State::Closing if self.eof => Flushed::Close,
            State::Closing => {
                self.input.clear();
                self.state = State::Draining { until: now + LINGER };
                Flushed::ShutWrite
            }
            State::Reading { .. } if self.eof => Flushed::Close,
            _ => Flushed::Open,
        }
    }

    /// Done with: the client finished sending and is owed nothing more, or it closed while
    /// its input was drained.
    pub fn finished(&self) -> bool {
        self.eof
            && match self.state {
                State::Draining { .. } => true,
                State::Reading { .. } => self.output.is_empty(),
                _ => false,
            }
    }

    /// Past its deadline: a slow head or body, an idle keep-alive, an answer nobody reads, a
    /// finished drain. A vote waiting for Kafka is bounded by the producer's delivery timeout.
    pub fn expired(&self, now: Instant) -> bool {
        match self.state {
            State::Draining { until } => now >= until,
            State::Reading { .. } | State::Closing => now >= self.deadline,
            State::Waiting { .. } => false,
        }
    }

    /// The next whole request in the input, if there is one. The rate limit (`limiter`, when
    /// on) admits a request to POST /votes at its head, before any other check, once.
    pub fn next(&mut self, limiter: Option<&mut Limiter>, now: Instant) -> Next {
        let State::Reading { continue_sent } = self.state else { return Next::Wait };
        let head = match http::parse_head(&self.input) {
            Ok(Some(head)) => head,
            // The client stopped sending in the middle of a head: Go's net/http answers 400
            // (stray line ends between requests excepted), so this does too.
            Ok(None) if self.eof && self.input.iter().any(|&b| b != b'\r' && b != b'\n') => {
                let err = http::Error::Malformed("unexpected EOF".into());
                let response = api::bad_request(&err);
                return Next::Refuse { pending: Pending::unparsed(now), response };
            }
            Ok(None) => {
                if self.phase == Phase::Idle && !self.input.is_empty() {
                    self.phase = Phase::Head;
                    self.deadline = now + ms(self.limits.header_timeout_ms);
                }
                return Next::Wait;
            }
            Err(err) => {
                let response = api::bad_request(&err);
                return Next::Refuse { pending: Pending::unparsed(now), response };
            }
        };
        let pending =
            Pending { method: head.method.clone(), path: head.path.clone(), started: now };
        // Like the Go front's middleware: before any other check of the request.
        if head.path == api::PATH_VOTES && self.admission.is_none() {
            if let Some(limiter) = limiter {
                self.admission = Some(limiter.admit(&head.forwarded_for, &self.peer, now));
            }
        }
        let route = match self.admission {
            Some(Err(wait)) => Err(api::too_many_requests(wait)),
            _ => api::route(&head),
        };
        let route = match route {
            Ok(route) => route,
            Err(response) => return Next::Refuse { pending, response },
        };
        // Health and metrics do not read a body: with one, they answer at once and close the
        // connection, as the Go front does.
        let bodiless = route != Route::Vote && head.framing != http::Framing::Length(0);
        let read = if bodiless {
            Ok(Some(http::Body { bytes: Vec::new(), consumed: 0 }))
        } else {
            http::read_body(head.framing, &self.input[head.len..], api::MAX_BODY)
        };
        let body = match read {
            Ok(Some(body)) => body,
            Ok(None) => {
                if self.phase != Phase::Body {
                    self.phase = Phase::Body;
                    self.deadline = now + ms(self.limits.body_timeout_ms);
                }
                if self.eof {
                    return Next::Refuse { pending, response: api::body_unreadable() };
                }
                if head.expect_continue && !continue_sent {
                    self.output.extend_from_slice(http::CONTINUE);
                    self.state = State::Reading { continue_sent: true };
                }
                return Next::Wait;
            }
            Err(err) => return Next::Refuse { pending, response: api::bad_body(&err) },
        };
        self.input.drain(..head.len + body.consumed);
        self.state = State::Reading { continue_sent: false };
        self.admission = None;
        self.idle(now);
        let close = bodiless || !head.keep_alive || (self.eof && self.input.is_empty());
        Next::Request(Request { route, head, body: body.bytes, pending, close })
    }

    fn idle(&mut self, now: Instant) {
        self.phase = Phase::Idle;
        self.deadline = now + ms(self.limits.idle_timeout_ms);
    }

    /// Writes an answer (its head alone for HEAD); with `close`, the connection closes after it.
    pub fn respond(&mut self, mut response: Response, close: bool, head_only: bool, now: Instant) {
        response.close = close;
        response.write(&mut self.output, head_only);
        if close {
            self.state = State::Closing;
            // A client that does not read its answer gets no longer than an idle one.
            self.deadline = now + ms(self.limits.idle_timeout_ms);
        }
    }

    /// The request's vote went to Kafka as `ticket`: requests after it wait for its answer.
    pub fn wait(&mut self, ticket: Ticket, vote_id: String, request: &Request) {
        self.state = State::Waiting {
            ticket,
            vote_id,
            started: request.pending.started,
            keep_alive: !request.close,
        };
    }

    /// Kafka has answered `ticket`: the vote to answer, if this connection waits for it.
    pub fn delivered(&mut self, ticket: Ticket, now: Instant) -> Option<Delivered> {
        let State::Waiting { ticket: waiting, .. } = self.state else { return None };
        if waiting != ticket {
            return None;
        }
        let State::Waiting { vote_id, started, keep_alive, .. } =
            std::mem::replace(&mut self.state, State::Reading { continue_sent: false })
        else {
            unreachable!("matched above")
        };
        self.idle(now);
        let close = !keep_alive || (self.eof && self.input.is_empty());
        Some(Delivered { vote_id, started, close })
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimit;

    const LIMITS: Limits = Limits {
        header_timeout_ms: 5_000,
        body_timeout_ms: 10_000,
        idle_timeout_ms: 30_000,
        max_connections: 10,
    };
    const VOTE: &str = r#"{"name":"B","album":"A","year":1990,"rank":1}"#;
    const PEER: &str = "10.0.0.1";

    /// A connection just accepted, and the time it was.
    fn open() -> (Instant, Conn) {
        let t0 = Instant::now();
        (t0, Conn::new(PEER.into(), LIMITS, t0))
    }

    fn vote_head(extra: &str, length: usize) -> String {
        format!(
            "POST /votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n"
        )
    }

    fn request(next: Next) -> Request {
        match next {
            Next::Request(request) => request,
            other => panic!("want a request, got {other:?}"),
        }
    }

    fn refusal(next: Next) -> Response {
        match next {
            Next::Refuse { response, .. } => response,
            other => panic!("want a refusal, got {other:?}"),
        }
    }

    fn wait(next: Next) {
        assert!(matches!(next, Next::Wait), "want to wait, got {next:?}");
    }

    fn take_output(c: &mut Conn) -> String {
        let out = String::from_utf8(c.output().to_vec()).unwrap();
        c.sent(out.len());
        out
    }

    #[test]
    fn answers_pipelined_requests_in_order() {
        let (t0, mut c) = open();
        c.received(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let first = request(c.next(None, t0));
        assert_eq!((first.route, first.close), (Route::Healthz, false));
        c.respond(api::healthz(), first.close, false, t0);
        let second = request(c.next(None, t0));
        assert_eq!((second.route, second.head.method.as_str()), (Route::Readyz, "HEAD"));
        c.respond(api::readyz(true), second.close, true, t0);
        wait(c.next(None, t0));
        let out = take_output(&mut c);
        assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
        assert!(!out.ends_with('}'), "HEAD's answer has no body: {out}");
        assert_eq!(c.flushed(t0), Flushed::Open);
    }

    #[test]
    fn reads_a_vote_that_arrives_in_pieces_with_the_deadline_of_each_phase() {
        let (t0, mut c) = open();
        let head = vote_head("", VOTE.len());
        c.received(&head.as_bytes()[..10]);
        wait(c.next(None, t0));
        assert!(c.expired(t0 + ms(5_000)) && !c.expired(t0 + ms(4_999)), "header timeout");

        let t1 = t0 + ms(1_000);
        c.received(&head.as_bytes()[10..]);
        c.received(&VOTE.as_bytes()[..5]);
        wait(c.next(None, t1));
        assert!(c.expired(t1 + ms(10_000)) && !c.expired(t1 + ms(9_999)), "body timeout");

        let t2 = t1 + ms(1_000);
        c.received(&VOTE.as_bytes()[5..]);
        let vote = request(c.next(None, t2));
        assert_eq!(
            (vote.route, vote.body.as_slice(), vote.close),
            (Route::Vote, VOTE.as_bytes(), false)
        );
        assert!(c.expired(t2 + ms(30_000)) && !c.expired(t2 + ms(29_999)), "idle timeout");

        // The first byte of the next request starts its header timeout.
        let t3 = t2 + ms(20_000);
        c.received(b"G");
        wait(c.next(None, t3));
        assert!(c.expired(t3 + ms(5_000)) && !c.expired(t3 + ms(4_999)), "next header timeout");
    }

    #[test]
    fn sends_100_continue_once_and_only_for_a_request_it_will_read() {
        let (t0, mut c) = open();
        c.received(vote_head("Expect: 100-continue\r\n", VOTE.len()).as_bytes());
        wait(c.next(None, t0));
        assert_eq!(c.output(), http::CONTINUE);
        c.sent(http::CONTINUE.len());
        c.received(&VOTE.as_bytes()[..3]);
        wait(c.next(None, t0));
        assert!(c.output().is_empty(), "a second 100 Continue");
        c.received(&VOTE.as_bytes()[3..]);
        assert_eq!(request(c.next(None, t0)).body, VOTE.as_bytes());

        // Refused at its head (wrong type): answered at once, no 100 Continue, then closed.
        let mut c = Conn::new(PEER.into(), LIMITS, t0);
        c.received(
            b"POST /votes HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        );
        assert_eq!(refusal(c.next(None, t0)).status, 415);
        assert!(c.output().is_empty());
    }

    #[test]
    fn end_of_stream_in_a_head_or_a_body_is_answered_400() {
        let (t0, mut c) = open();
        c.received(b"GET /healthz HTTP/1.1\r\nHo");
        wait(c.next(None, t0));
        c.end_of_stream();
        assert_eq!(refusal(c.next(None, t0)).status, 400);

        let mut c = Conn::new(PEER.into(), LIMITS, t0);
        c.received(vote_head("", VOTE.len()).as_bytes());
        c.received(&VOTE.as_bytes()[..3]);
        c.end_of_stream();
        let response = refusal(c.next(None, t0));
        assert_eq!(response.status, 400);
        assert!(String::from_utf8_lossy(&response.body).contains("\"body\""));
    }

    #[test]
    fn end_of_stream_between_requests_finishes_the_connection() {
        let (t0, mut c) = open();
        c.received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n");
        c.end_of_stream();
        assert!(!c.wants_read());
        let health = request(c.next(None, t0));
        c.respond(api::healthz(), health.close, false, t0);
        wait(c.next(None, t0));
        assert!(!c.finished(), "an answer is still owed");
        take_output(&mut c);
        assert!(c.finished());
        assert_eq!(c.flushed(t0), Flushed::Close);
    }

    #[test]
    fn closing_shuts_our_side_then_drains_until_the_client_goes_or_time_is_up() {
        let (t0, mut c) = open();
        c.received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /x");
        let health = request(c.next(None, t0));
        assert!(health.close);
        c.respond(api::healthz(), true, false, t0);
        assert!(!c.wants_read(), "a closing connection reads nothing");
        wait(c.next(None, t0));
        assert!(take_output(&mut c).contains("Connection: close"));
        assert_eq!(c.flushed(t0), Flushed::ShutWrite);
        assert!(c.wants_read() && !c.input_full());
        c.received(&[b'x'; MAX_INPUT + 1]);
        assert!(!c.input_full(), "drained input is dropped");
        assert!(!c.expired(t0 + LINGER - ms(1)) && c.expired(t0 + LINGER));
        assert!(!c.finished());
        c.end_of_stream();
        assert!(c.finished());
    }

    #[test]
    fn health_with_a_body_is_answered_and_closes() {
        let (t0, mut c) = open();
        c.received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n");
        let health = request(c.next(None, t0));
        assert_eq!((health.route, health.close), (Route::Healthz, true));
    }

    #[test]
    fn a_vote_with_kafka_holds_the_requests_behind_it() {
        let (t0, mut c) = open();
        let mut two = vote_head("", VOTE.len()) + VOTE;
        two += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        c.received(two.as_bytes());
        let vote = request(c.next(None, t0));
        c.wait(7, "id-1".into(), &vote);
        wait(c.next(None, t0));
        assert!(!c.expired(t0 + ms(3_600_000)), "Kafka's delivery timeout bounds the wait");
        assert_eq!(c.delivered(8, t0), None);
        let t1 = t0 + ms(5);
        let delivered = c.delivered(7, t1).unwrap();
        assert_eq!(delivered, Delivered { vote_id: "id-1".into(), started: t0, close: false });
        assert_eq!(c.delivered(7, t1), None, "answered once");
        c.respond(api::accepted(&delivered.vote_id), delivered.close, false, t1);
        assert_eq!(request(c.next(None, t1)).route, Route::Healthz);
        let out = take_output(&mut c);
        assert!(out.starts_with("HTTP/1.1 202 Accepted\r\n"), "{out}");
    }

    #[test]
    fn pipelined_input_beyond_the_bound_stops_reading() {
        let (t0, mut c) = open();
        c.received(format!("{}{VOTE}", vote_head("", VOTE.len())).as_bytes());
        let vote = request(c.next(None, t0));
        c.wait(1, "id".into(), &vote);
        assert!(c.wants_read());
        c.received(&vec![b'G'; MAX_INPUT]);
        assert!(c.input_full() && !c.wants_read());
    }

    #[test]
    fn the_rate_limit_admits_a_vote_once_at_its_head_before_other_checks() {
        let t0 = Instant::now();
        let settings = RateLimit { per_second: 0.5, burst: 1, trusted_hops: 1, max_clients: 10 };
        let mut limiter = Limiter::new(&settings, t0);
        let mut c = Conn::new("10.0.0.9".into(), LIMITS, t0);
        // The first vote's body comes in two reads: one token, taken at its head.
        c.received(vote_head("X-Forwarded-For: 203.0.113.7\r\n", VOTE.len()).as_bytes());
        wait(c.next(Some(&mut limiter), t0));
        c.received(VOTE.as_bytes());
        let vote = request(c.next(Some(&mut limiter), t0));
        c.respond(api::accepted("id"), vote.close, false, t0);

        // The same client (by X-Forwarded-For) again, with a body the route would refuse: 429.
        c.received(b"POST /votes HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n");
        let refused = refusal(c.next(Some(&mut limiter), t0));
        assert_eq!(refused.status, 429);
        assert!(refused.headers.contains(&("Retry-After", "2".into())), "{:?}", refused.headers);

        // Another client behind the same proxy; health is never limited.
        let mut other = Conn::new("10.0.0.9".into(), LIMITS, t0);
        other.received(vote_head("X-Forwarded-For: 198.51.100.1\r\n", VOTE.len()).as_bytes());
        other.received(VOTE.as_bytes());
        request(other.next(Some(&mut limiter), t0));
        other.received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n");
        assert_eq!(request(other.next(Some(&mut limiter), t0)).route, Route::Healthz);
    }

    #[test]
    fn a_malformed_head_is_refused_and_closes() {
        let (t0, mut c) = open();
        c.received(b"NOT HTTP\r\n\r\n");
        let response = refusal(c.next(None, t0));
        assert_eq!(response.status, 400);
        c.respond(response, true, false, t0);
        assert!(!c.wants_read());
        assert!(
            c.expired(t0 + ms(30_000)) && !c.expired(t0 + ms(29_999)),
            "time to read the answer"
        );
    }
}
