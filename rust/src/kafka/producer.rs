//! The producer's brain, without I/O: which brokers to connect to, which records go in which
//! request, what a response means for each vote waiting on it.
//!
//! The caller (the WasmEdge poll loop) owns the sockets and feeds events in: [`Producer::send`]
//! for a vote, [`Producer::connected`], [`Producer::received`] and [`Producer::closed`] for
//! socket events, and [`Producer::tick`] after each round of events. It then performs the
//! [`Output`]s: open a connection, write bytes, close, and answer the HTTP request of a
//! delivered (or failed) vote. Time is milliseconds on any monotonic clock the caller chooses.
//!
//! Policy, in short (docs/wasm.md has the why):
//! - one connection per broker, plus one to a bootstrap address while metadata is needed;
//!   each starts with ApiVersions to make sure the broker serves our versions;
//! - records are batched per partition and every partition led by the same broker goes out in
//!   one Produce request (acks=all), at most `max_in_flight` requests per connection;
//! - retriable errors and lost connections requeue the records and refresh metadata; a record
//!   that is not acknowledged within `delivery_timeout_ms` fails as [`Error::TimedOut`];
//! - when no bootstrap address answers, Kafka is down: queued records fail, new ones fail at
//!   once with [`Error::Unavailable`] (HTTP 503), and a new attempt starts every
//!   `retry_backoff_ms` until one succeeds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use super::batch::{self, Record};
use super::partition::Partitioner;
use super::protocol::{self, ApiVersionsResponse, MetadataResponse};
use super::wire;
use crate::record::Message;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// host:port pairs to ask for metadata.
    pub bootstrap: Vec<(String, u16)>,
    pub topic: String,
    pub client_id: String,
    pub partitioner: Partitioner,
    /// How long a partition's first record may wait for others to join its batch.
    pub linger_ms: u64,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    /// Produce requests a connection may have unanswered at once.
    pub max_in_flight: usize,
    /// The broker's ack timeout, and how long we wait for any response before giving up on
    /// the connection.
    pub request_timeout_ms: u64,
    /// How long a vote may wait, queued or retried, before it fails.
    pub delivery_timeout_ms: u64,
    /// Pause before reconnecting, retrying a partition, or refreshing metadata again.
    pub retry_backoff_ms: u64,
    pub metadata_max_age_ms: u64,
    /// Votes queued at once; beyond it they fail at once.
    pub max_pending: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bootstrap: vec![("127.0.0.1".to_owned(), 9092)],
            topic: "votes".to_owned(),
            client_id: "tally-wasm-producer".to_owned(),
            partitioner: Partitioner::Murmur2,
            linger_ms: 5,
            batch_max_records: 200,
            batch_max_bytes: 1 << 20,
            max_in_flight: 2,
            request_timeout_ms: 5_000,
            delivery_timeout_ms: 5_000,
            retry_backoff_ms: 250,
            metadata_max_age_ms: 60_000,
            max_pending: 20_000,
        }
    }
}

/// The caller's handle on one vote; given back in [`Output::Delivered`].
pub type Ticket = u64;
/// A connection the producer asked for with [`Output::Connect`].
pub type ConnId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection and report [`Producer::connected`] or [`Producer::closed`].
    Connect { conn: ConnId, host: String, port: u16 },
    /// Write these bytes, in order after earlier ones, on a connected connection.
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Close the connection; the producer has already forgotten it.
    Close { conn: ConnId },
    /// A vote's fate: acknowledged by every in-sync replica, or failed.
    Delivered { ticket: Ticket, result: Result<Delivery, Error> },
    /// Something an operator wants in the log.
    Log(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

/// Why a vote was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Kafka cannot be reached; the reason is the last failure seen.
    Unavailable(String),
    /// Not acknowledged within the delivery timeout.
    TimedOut,
    /// Too many votes are already waiting.
    QueueFull,
    /// The broker refused the record for good (a Kafka error code that retrying cannot fix).
    Rejected { code: i16 },
}

impl Error {
    /// Whether the client should simply try again later (HTTP 503 rather than 500).
    pub fn is_transient(&self) -> bool {
        !matches!(self, Error::Rejected { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(reason) => write!(f, "kafka unavailable: {reason}"),
            Error::TimedOut => f.write_str("kafka did not acknowledge the vote in time"),
            Error::QueueFull => f.write_str("too many votes waiting for kafka"),
            Error::Rejected { code } => {
                write!(f, "kafka rejected the vote: {}", protocol::error_name(*code))
            }
        }
    }
}

impl std::error::Error for Error {}

/// Counters for /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub produce_requests: u64,
    pub records_sent: u64,
    pub records_acked: u64,
    /// By kind: connect, disconnect, timeout, produce, metadata, protocol.
    pub errors: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    Seed(usize),
    Broker(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Connecting,
    Negotiating,
    Ready,
}

#[derive(Debug)]
enum Request {
    ApiVersions,
    Metadata,
    Produce(Vec<(i32, Vec<Pending>)>),
}

#[derive(Debug)]
struct InFlight {
    correlation_id: i32,
    sent_at: u64,
    request: Request,
}

#[derive(Debug)]
struct Conn {
    peer: Peer,
    state: ConnState,
    since: u64,
    inbuf: Vec<u8>,
    in_flight: VecDeque<InFlight>,
}

impl Conn {
    fn produce_in_flight(&self) -> usize {
        self.in_flight.iter().filter(|f| matches!(f.request, Request::Produce(_))).count()
    }
}

#[derive(Debug)]
struct Pending {
    ticket: Ticket,
    message: Message,
    size: usize,
    queued_at: u64,
    deadline: u64,
}

#[derive(Debug, Default)]
struct PartitionQueue {
    records: VecDeque<Pending>,
    bytes: usize,
    retry_at: u64,
    /// The leader failed us: wait for fresh metadata before sending again.
    stale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Starting,
    Up,
    Down { until: u64 },
}

pub struct Producer {
    config: Config,
    now: u64,
    health: Health,
    down_reason: String,
    conns: BTreeMap<ConnId, Conn>,
    by_peer: HashMap<Peer, ConnId>,
    next_conn: ConnId,
    next_correlation: i32,
    brokers: HashMap<i32, (String, u16)>,
    broker_retry_at: HashMap<i32, u64>,
    /// Leader per partition; empty until the first metadata.
    leaders: Vec<i32>,
    metadata_at: Option<u64>,
    metadata_wanted: bool,
    metadata_next: u64,
    metadata_conn: Option<ConnId>,
    /// The bootstrap connection of the current metadata round, and how many have failed.
    seed_conn: Option<ConnId>,
    seed_failures: usize,
    next_seed: usize,
    unassigned: VecDeque<Pending>,
    queues: BTreeMap<i32, PartitionQueue>,
    pending: usize,
    out: VecDeque<Output>,
    stats: Stats,
}

impl Producer {
    pub fn new(config: Config, now: u64) -> Self {
        assert!(!config.bootstrap.is_empty(), "at least one bootstrap address");
        Producer {
            config,
            now,
            health: Health::Starting,
            down_reason: "connecting".to_owned(),
            conns: BTreeMap::new(),
            by_peer: HashMap::new(),
            next_conn: 1,
            next_correlation: 1,
            brokers: HashMap::new(),
            broker_retry_at: HashMap::new(),
            leaders: Vec::new(),
            metadata_at: None,
            metadata_wanted: true,
            metadata_next: now,
            metadata_conn: None,
            seed_conn: None,
            seed_failures: 0,
            next_seed: 0,
            unassigned: VecDeque::new(),
            queues: BTreeMap::new(),
            pending: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Ready for votes: the last metadata round reached Kafka and found the topic.
    pub fn is_ready(&self) -> bool {
        self.health == Health::Up
    }

    /// Why the producer is not ready, for /readyz.
    pub fn status(&self) -> String {
        match self.health {
            Health::Up => {
                format!("ready: {} partitions of {}", self.leaders.len(), self.config.topic)
            }
            _ => self.down_reason.clone(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Votes accepted but not yet delivered.
    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Queues a vote; its [`Output::Delivered`] comes later (or after the next tick).
    pub fn send(&mut self, ticket: Ticket, message: Message, now: u64) {
        self.now = now;
        if let Health::Down { .. } = self.health {
            let reason = self.down_reason.clone();
            return self.deliver(ticket, Err(Error::Unavailable(reason)));
        }
        if self.pending >= self.config.max_pending {
            return self.deliver(ticket, Err(Error::QueueFull));
        }
        let size = batch::record_size(&record_of(&message));
        let pending = Pending {
            ticket,
            message,
            size,
            queued_at: now,
            deadline: now + self.config.delivery_timeout_ms,
        };
        self.pending += 1;
        if self.leaders.is_empty() {
            self.unassigned.push_back(pending);
        } else {
            let partition = self.partition_of(&pending.message.key);
            self.enqueue(partition, pending, false);
        }
    }

    /// A connection asked for with [`Output::Connect`] is established.
    pub fn connected(&mut self, conn: ConnId, now: u64) {
        self.now = now;
        let correlation_id = self.correlation_id();
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.state != ConnState::Connecting {
            return;
        }
        c.state = ConnState::Negotiating;
        c.in_flight.push_back(InFlight {
            correlation_id,
            sent_at: now,
            request: Request::ApiVersions,
        });
        let bytes = protocol::api_versions_request(correlation_id, &self.config.client_id);
        self.out.push_back(Output::Send { conn, bytes });
    }

    /// A connection failed to open, or closed; `reason` goes to the log.
    pub fn closed(&mut self, conn: ConnId, reason: &str, now: u64) {
        self.now = now;
        self.drop_conn(conn, reason);
    }

    /// Bytes arrived on a connection.
    pub fn received(&mut self, conn: ConnId, bytes: &[u8], now: u64) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.inbuf.extend_from_slice(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else { return };
            let (frame, used) = match wire::split_frame(&c.inbuf) {
                Ok(Some((frame, used))) => (frame.to_vec(), used),
                Ok(None) => return,
                Err(err) => return self.protocol_error(conn, &err.to_string()),
            };
            c.inbuf.drain(..used);
            let (correlation_id, body) = match protocol::split_response(&frame) {
                Ok(split) => split,
                Err(err) => return self.protocol_error(conn, &err.to_string()),
            };
            // Kafka answers a connection's requests in order.
            let Some(front) = c.in_flight.front() else {
                return self.protocol_error(conn, "response to no request");
            };
            if front.correlation_id != correlation_id {
                let why = format!("correlation id {correlation_id}, want {}", front.correlation_id);
                return self.protocol_error(conn, &why);
            }
            let request = c.in_flight.pop_front().expect("front exists").request;
            if let Err(err) = self.on_response(conn, request, body) {
                return self.protocol_error(conn, &err);
            }
        }
    }

    /// Runs timers and sends what is ready; call after each round of events.
    pub fn tick(&mut self, now: u64) {
        self.now = now;
        self.expire_requests();
        self.expire_records();
        if let Health::Down { until } = self.health {
            if now >= until && !self.metadata_wanted {
                self.metadata_wanted = true;
                self.seed_failures = 0;
            }
        }
        // Periodic refresh only while up: when down, the backoff above decides when to try.
        if let (Health::Up, Some(at)) = (self.health, self.metadata_at) {
            if now >= at + self.config.metadata_max_age_ms {
                self.metadata_wanted = true;
            }
        }
        self.refresh_metadata();
        self.flush();
    }

    /// When [`Producer::tick`] next has something to do, if nothing else happens first.
    pub fn next_wakeup(&self) -> Option<u64> {
        // Anything due by now was handled by the last tick, or waits for an event (a connection,
        // a response) rather than for time: only the future counts, or the caller would spin.
        let now = self.now;
        let mut at: Option<u64> = None;
        let mut consider = |t: u64| {
            if t > now {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        let timeout = self.config.request_timeout_ms + 1_000;
        for c in self.conns.values() {
            match c.in_flight.front() {
                Some(f) => consider(f.sent_at + timeout),
                None if c.state == ConnState::Connecting => consider(c.since + timeout),
                None => {}
            }
        }
        if let Some(p) = self.unassigned.front() {
            consider(p.deadline);
        }
        for q in self.queues.values() {
            if let Some(p) = q.records.front() {
                consider(p.deadline);
                consider((p.queued_at + self.config.linger_ms).max(q.retry_at));
            }
        }
        match self.health {
            Health::Down { until } => consider(until),
            _ if self.metadata_wanted => consider(self.metadata_next),
            _ => {}
        }
        if let (Health::Up, Some(m)) = (self.health, self.metadata_at) {
            consider(m + self.config.metadata_max_age_ms);
        }
        for (&broker, &retry_at) in &self.broker_retry_at {
            if self.queues.values().any(|q| !q.records.is_empty()) && self.leaders.contains(&broker)
            {
                consider(retry_at);
            }
        }
        at
    }

    fn correlation_id(&mut self) -> i32 {
        let id = self.next_correlation;
        self.next_correlation = self.next_correlation.checked_add(1).unwrap_or(1);
        id
    }

    fn partition_of(&self, key: &[u8]) -> i32 {
        self.config.partitioner.partition(key, self.leaders.len() as i32)
    }

    fn deliver(&mut self, ticket: Ticket, result: Result<Delivery, Error>) {
        self.out.push_back(Output::Delivered { ticket, result });
    }

    fn fail(&mut self, pending: Pending, error: Error) {
        self.pending -= 1;
        self.deliver(pending.ticket, Err(error));
    }

    fn error(&mut self, kind: &'static str) {
        *self.stats.errors.entry(kind).or_default() += 1;
    }

    fn log(&mut self, message: String) {
        self.out.push_back(Output::Log(message));
    }

    fn enqueue(&mut self, partition: i32, pending: Pending, front: bool) {
        let q = self.queues.entry(partition).or_default();
        q.bytes += pending.size;
        if front {
            q.records.push_front(pending);
        } else {
            q.records.push_back(pending);
        }
    }

    fn open(&mut self, peer: Peer, host: String, port: u16) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn,
            Conn {
                peer,
                state: ConnState::Connecting,
                since: self.now,
                inbuf: Vec::new(),
                in_flight: VecDeque::new(),
            },
        );
        self.by_peer.insert(peer, conn);
        self.out.push_back(Output::Connect { conn, host, port });
        conn
    }

    fn close(&mut self, conn: ConnId, reason: &str) {
        if self.conns.contains_key(&conn) {
            self.out.push_back(Output::Close { conn });
            self.drop_conn(conn, reason);
        }
    }

    fn protocol_error(&mut self, conn: ConnId, why: &str) {
        self.error("protocol");
        self.close(conn, &format!("protocol error: {why}"));
    }

    /// Forgets a connection: its requests' records go back to their queues.
    fn drop_conn(&mut self, conn: ConnId, reason: &str) {
        let Some(c) = self.conns.remove(&conn) else { return };
        if self.by_peer.get(&c.peer) == Some(&conn) {
            self.by_peer.remove(&c.peer);
        }
        let was_ready = c.state == ConnState::Ready;
        let had_requests = !c.in_flight.is_empty();
        for f in c.in_flight {
            if let Request::Produce(batches) = f.request {
                for (partition, records) in batches {
                    self.requeue(partition, records, true);
                }
            }
        }
        if self.metadata_conn == Some(conn) {
            self.metadata_conn = None;
        }
        let kind =
            if !was_ready && c.state == ConnState::Connecting { "connect" } else { "disconnect" };
        match c.peer {
            Peer::Broker(id) => {
                if was_ready && !had_requests {
                    return; // an idle connection closed by the broker: reconnect when needed
                }
                self.error(kind);
                self.log(format!("kafka broker {id}: {reason}"));
                self.broker_retry_at.insert(id, self.now + self.config.retry_backoff_ms);
                self.metadata_wanted = true;
            }
            Peer::Seed(i) => {
                if self.seed_conn != Some(conn) {
                    return;
                }
                self.seed_conn = None;
                if !self.metadata_wanted {
                    return; // the round already succeeded
                }
                self.error(kind);
                let (host, port) = &self.config.bootstrap[i];
                let why = format!("{host}:{port}: {reason}");
                self.seed_failures += 1;
                self.next_seed = (i + 1) % self.config.bootstrap.len();
                if self.seed_failures >= self.config.bootstrap.len() {
                    self.go_down(why);
                } else {
                    self.log(format!("kafka bootstrap {why}"));
                }
            }
        }
    }

    /// Puts records back at the front of their queue, to go again after the backoff (and, if
    /// `stale`, after fresh metadata).
    fn requeue(&mut self, partition: i32, records: Vec<Pending>, stale: bool) {
        for pending in records.into_iter().rev() {
            self.enqueue(partition, pending, true);
        }
        let q = self.queues.entry(partition).or_default();
        q.retry_at = self.now + self.config.retry_backoff_ms;
        q.stale |= stale;
    }

    /// No bootstrap address answered: fail what waits, refuse new votes until a round succeeds.
    fn go_down(&mut self, reason: String) {
        if !matches!(self.health, Health::Down { .. }) {
            self.log(format!("kafka unavailable: {reason}"));
        }
        self.health = Health::Down { until: self.now + self.config.retry_backoff_ms };
        self.down_reason = reason.clone();
        self.metadata_wanted = false;
        self.seed_failures = 0;
        let mut failed: Vec<Pending> = self.unassigned.drain(..).collect();
        for q in self.queues.values_mut() {
            failed.extend(q.records.drain(..));
            q.bytes = 0;
        }
        for pending in failed {
            self.fail(pending, Error::Unavailable(reason.clone()));
        }
    }

    fn expire_requests(&mut self) {
        let limit = self.config.request_timeout_ms + 1_000;
        let now = self.now;
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.in_flight.front() {
                Some(f) => now >= f.sent_at + limit,
                None => c.state == ConnState::Connecting && now >= c.since + limit,
            })
            .map(|(&id, _)| id)
            .collect();
        for conn in late {
            self.error("timeout");
            self.close(conn, &format!("no answer within {limit} ms"));
        }
    }

    fn expire_records(&mut self) {
        let now = self.now;
        let mut expired = Vec::new();
        while self.unassigned.front().is_some_and(|p| p.deadline <= now) {
            expired.extend(self.unassigned.pop_front());
        }
        for q in self.queues.values_mut() {
            // Queues are in deadline order: requeued records are older and go to the front.
            while q.records.front().is_some_and(|p| p.deadline <= now) {
                let p = q.records.pop_front().expect("front exists");
                q.bytes -= p.size;
                expired.push(p);
            }
        }
        for pending in expired {
            self.fail(pending, Error::TimedOut);
        }
    }

    fn ready_conn(&self) -> Option<ConnId> {
        // Brokers first: a bootstrap connection is only for when there is nothing else.
        let ready = |c: &&Conn| c.state == ConnState::Ready;
        self.conns
            .iter()
            .filter(|(_, c)| matches!(c.peer, Peer::Broker(_)))
            .find(|(_, c)| ready(c))
            .or_else(|| self.conns.iter().find(|(_, c)| ready(c)))
            .map(|(&id, _)| id)
    }

    fn refresh_metadata(&mut self) {
        if !self.metadata_wanted || self.metadata_conn.is_some() || self.now < self.metadata_next {
            return;
        }
        match self.ready_conn() {
            Some(conn) => {
                let correlation_id = self.correlation_id();
                let topics = [self.config.topic.as_str()];
                let bytes =
                    protocol::metadata_request(correlation_id, &self.config.client_id, &topics);
                let c = self.conns.get_mut(&conn).expect("ready connection exists");
                c.in_flight.push_back(InFlight {
                    correlation_id,
                    sent_at: self.now,
                    request: Request::Metadata,
                });
                self.out.push_back(Output::Send { conn, bytes });
                self.metadata_conn = Some(conn);
                self.metadata_next = self.now + self.config.retry_backoff_ms;
            }
            None if self.seed_conn.is_none() => {
                let i = self.next_seed;
                let (host, port) = self.config.bootstrap[i].clone();
                self.seed_conn = Some(self.open(Peer::Seed(i), host, port));
            }
            None => {} // the round's bootstrap connection is on its way
        }
    }

    fn on_response(&mut self, conn: ConnId, request: Request, body: &[u8]) -> Result<(), String> {
        match request {
            Request::ApiVersions => {
                let response = ApiVersionsResponse::parse(body).map_err(|e| e.to_string())?;
                if response.error_code != 0 {
                    return Err(format!(
                        "ApiVersions: {}",
                        protocol::error_name(response.error_code)
                    ));
                }
                if let Some((api, version)) = response.missing() {
                    return Err(format!("broker does not serve api {api} version {version}"));
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.state = ConnState::Ready;
                    if let Peer::Broker(id) = c.peer {
                        self.broker_retry_at.remove(&id);
                    }
                }
                Ok(())
            }
            Request::Metadata => {
                self.metadata_conn = None;
                let response = MetadataResponse::parse(body).map_err(|e| e.to_string())?;
                self.on_metadata(response);
                Ok(())
            }
            Request::Produce(batches) => {
                let results = protocol::parse_produce_response(body).map_err(|e| e.to_string());
                let results = match results {
                    Ok(results) => results,
                    Err(err) => {
                        // Put the records back before the connection goes.
                        for (partition, records) in batches {
                            self.requeue(partition, records, false);
                        }
                        return Err(err);
                    }
                };
                self.on_produced(batches, &results);
                Ok(())
            }
        }
    }

    fn on_metadata(&mut self, response: MetadataResponse) {
        self.brokers = response
            .brokers
            .iter()
            .filter_map(|b| Some((b.node_id, (b.host.clone(), u16::try_from(b.port).ok()?))))
            .collect();
        let topic = response.topics.iter().find(|t| t.name == self.config.topic);
        let problem = match topic {
            None => Some("not in the metadata".to_owned()),
            Some(t) if t.error_code != 0 => Some(protocol::error_name(t.error_code).to_owned()),
            Some(t) if t.partitions.is_empty() => Some("no partitions".to_owned()),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            self.error("metadata");
            let reason = format!("topic {}: {problem}", self.config.topic);
            return self.go_down(reason);
        }
        let topic = topic.expect("checked above");
        let count = topic.partitions.iter().map(|p| p.partition + 1).max().unwrap_or(0).max(0);
        let mut leaders = vec![-1; count as usize];
        for p in &topic.partitions {
            if p.partition >= 0 {
                leaders[p.partition as usize] = if p.error_code == 0 { p.leader } else { -1 };
            }
        }
        let changed = leaders != self.leaders;
        for q in self.queues.values_mut() {
            q.stale = false;
        }
        self.leaders = leaders;
        self.metadata_at = Some(self.now);
        self.metadata_wanted = false;
        self.seed_failures = 0;
        if self.health != Health::Up {
            self.health = Health::Up;
            let brokers: Vec<String> =
                self.brokers.iter().map(|(id, (h, p))| format!("{id}={h}:{p}")).collect();
            self.log(format!(
                "kafka ready: topic {} has {} partitions, brokers {}",
                self.config.topic,
                self.leaders.len(),
                brokers.join(" ")
            ));
        } else if changed {
            self.log(format!("kafka leaders now {:?}", self.leaders));
        }
        // A seed connection has done its job once metadata is known.
        if let Some(seed) = self.seed_conn.take() {
            if self.metadata_conn != Some(seed) {
                self.out.push_back(Output::Close { conn: seed });
                self.drop_conn(seed, "metadata known");
            }
        }
        let waiting: Vec<Pending> = self.unassigned.drain(..).collect();
        for pending in waiting {
            let partition = self.partition_of(&pending.message.key);
            self.enqueue(partition, pending, false);
        }
    }

    fn on_produced(
        &mut self,
        batches: Vec<(i32, Vec<Pending>)>,
        results: &[protocol::PartitionResult],
    ) {
        for (partition, records) in batches {
            let result =
                results.iter().find(|r| r.partition == partition && r.topic == self.config.topic);
            match result.map(|r| (r.error_code, r.base_offset)) {
                Some((0, base_offset)) => {
                    self.stats.records_acked += records.len() as u64;
                    for (i, pending) in records.into_iter().enumerate() {
                        self.pending -= 1;
                        let offset = base_offset + i as i64;
                        self.deliver(pending.ticket, Ok(Delivery { partition, offset }));
                    }
                }
                Some((code, _)) if !protocol::is_retriable(code) => {
                    self.error("produce");
                    self.log(format!(
                        "kafka partition {partition}: {}",
                        protocol::error_name(code)
                    ));
                    for pending in records {
                        self.fail(pending, Error::Rejected { code });
                    }
                }
                other => {
                    self.error("produce");
                    let code = other.map_or(13, |(code, _)| code);
                    let stale = protocol::is_leader_error(code);
                    self.metadata_wanted |= stale;
                    self.requeue(partition, records, stale);
                }
            }
        }
    }

    /// Sends every partition queue that is due, one Produce request per leader.
    fn flush(&mut self) {
        if self.leaders.is_empty() {
            return;
        }
        let now = self.now;
        let mut due: BTreeMap<i32, Vec<i32>> = BTreeMap::new(); // leader -> partitions
        for (&partition, q) in &self.queues {
            let Some(first) = q.records.front() else { continue };
            let full = q.records.len() >= self.config.batch_max_records
                || q.bytes >= self.config.batch_max_bytes;
            if q.stale
                || now < q.retry_at
                || (!full && now < first.queued_at + self.config.linger_ms)
            {
                continue;
            }
            let leader = self.leaders.get(partition as usize).copied().unwrap_or(-1);
            due.entry(leader).or_default().push(partition);
        }
        for (leader, partitions) in due {
            if leader < 0 {
                self.metadata_wanted = true;
                continue;
            }
            let conn = match self.by_peer.get(&Peer::Broker(leader)) {
                Some(&conn) => conn,
                None => {
                    let retry_at = self.broker_retry_at.get(&leader).copied().unwrap_or(0);
                    match self.brokers.get(&leader).cloned() {
                        Some((host, port)) if now >= retry_at => {
                            self.open(Peer::Broker(leader), host, port);
                        }
                        Some(_) => {}
                        None => self.metadata_wanted = true,
                    }
                    continue;
                }
            };
            let c = &self.conns[&conn];
            if c.state != ConnState::Ready || c.produce_in_flight() >= self.config.max_in_flight {
                continue;
            }
            self.produce(conn, &partitions);
        }
    }

    fn produce(&mut self, conn: ConnId, partitions: &[i32]) {
        let mut batches = Vec::new();
        let mut encoded = Vec::new();
        for &partition in partitions {
            let q = self.queues.get_mut(&partition).expect("due partitions have queues");
            let mut taken = Vec::new();
            let mut bytes = batch::BATCH_OVERHEAD;
            while let Some(p) = q.records.front() {
                let over = taken.len() >= self.config.batch_max_records
                    || bytes + p.size > self.config.batch_max_bytes;
                if over && !taken.is_empty() {
                    break;
                }
                let p = q.records.pop_front().expect("front exists");
                q.bytes -= p.size;
                bytes += p.size;
                taken.push(p);
            }
            let records: Vec<Record<'_>> = taken.iter().map(|p| record_of(&p.message)).collect();
            encoded.push((partition, batch::encode(&records)));
            self.stats.records_sent += taken.len() as u64;
            batches.push((partition, taken));
        }
        let correlation_id = self.correlation_id();
        let bytes = protocol::produce_request(
            correlation_id,
            &self.config.client_id,
            self.config.request_timeout_ms as i32,
            &self.config.topic,
            &encoded,
        );
        self.stats.produce_requests += 1;
        let c = self.conns.get_mut(&conn).expect("caller checked");
        c.in_flight.push_back(InFlight {
            correlation_id,
            sent_at: self.now,
            request: Request::Produce(batches),
        });
        self.out.push_back(Output::Send { conn, bytes });
    }
}

fn record_of(message: &Message) -> Record<'_> {
    Record {
        key: &message.key,
        value: &message.value,
        headers: &message.headers,
        timestamp_ms: message.timestamp_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::wire::{Reader, Writer};

    fn message(key: &str) -> Message {
        Message {
            key: key.as_bytes().to_vec(),
            value: b"value".to_vec(),
            headers: vec![("tally-route".into(), b"wasm".to_vec())],
            timestamp_ms: 1_000,
        }
    }

    /// A Produce request seen: the connection, and the keys per partition.
    type Produced = (ConnId, Vec<(i32, Vec<String>)>);

    /// A fake cluster: answers the producer's requests the way a broker would.
    struct Harness {
        producer: Producer,
        now: u64,
        /// conn -> (host, port, connected)
        conns: BTreeMap<ConnId, (String, u16)>,
        delivered: Vec<(Ticket, Result<Delivery, Error>)>,
        /// Produce requests seen: (conn, [(partition, keys)]).
        produced: Vec<Produced>,
        logs: Vec<String>,
        /// Requests waiting for an answer: (conn, api key, correlation id, body).
        requests: Vec<(ConnId, i16, i32, Vec<u8>)>,
    }

    impl Harness {
        fn new(config: Config) -> Self {
            Harness {
                producer: Producer::new(config, 0),
                now: 0,
                conns: BTreeMap::new(),
                delivered: Vec::new(),
                produced: Vec::new(),
                logs: Vec::new(),
                requests: Vec::new(),
            }
        }

        /// Ticks and collects outputs; connections are not established until `accept`.
        fn step(&mut self) {
            self.producer.tick(self.now);
            while let Some(output) = self.producer.poll_output() {
                match output {
                    Output::Connect { conn, host, port } => {
                        self.conns.insert(conn, (host, port));
                    }
                    Output::Send { conn, bytes } => {
                        let (frame, _) = wire::split_frame(&bytes).unwrap().unwrap();
                        let mut r = Reader::new(frame);
                        let api = r.i16("api").unwrap();
                        r.i16("version").unwrap();
                        let correlation = r.i32("corr").unwrap();
                        let client_len = r.i16("client").unwrap() as usize;
                        r.raw(client_len, "client").unwrap();
                        let body = frame[frame.len() - r.remaining()..].to_vec();
                        if api == protocol::API_PRODUCE {
                            self.produced.push((conn, decode_produce(&body)));
                        }
                        self.requests.push((conn, api, correlation, body));
                    }
                    Output::Close { conn } => {
                        self.conns.remove(&conn);
                    }
                    Output::Delivered { ticket, result } => self.delivered.push((ticket, result)),
                    Output::Log(line) => self.logs.push(line),
                }
            }
        }

        fn conn_to(&self, port: u16) -> Option<ConnId> {
            self.conns.iter().find(|(_, (_, p))| *p == port).map(|(&c, _)| c)
        }

        fn connect(&mut self, port: u16) -> ConnId {
            let conn = self.conn_to(port).expect("a connection was asked for");
            self.producer.connected(conn, self.now);
            self.step();
            conn
        }

        fn refuse(&mut self, port: u16) {
            let conn = self.conn_to(port).expect("a connection was asked for");
            self.conns.remove(&conn);
            self.producer.closed(conn, "connection refused", self.now);
            self.step();
        }

        /// Answers the oldest request of `api` with `body`.
        fn answer(&mut self, api: i16, body: Vec<u8>) {
            let i = self.requests.iter().position(|r| r.1 == api).expect("a request to answer");
            let (conn, _, correlation, _) = self.requests.remove(i);
            let mut frame = Writer::new();
            frame.i32(body.len() as i32 + 4).i32(correlation).raw(&body);
            self.producer.received(conn, &frame.buf, self.now);
            self.step();
        }

        fn answer_versions(&mut self) {
            let mut w = Writer::new();
            w.i16(0).array_len(3);
            w.i16(0).i16(3).i16(12).i16(3).i16(0).i16(13).i16(18).i16(0).i16(4);
            self.answer(protocol::API_VERSIONS, w.buf);
        }

        /// Metadata: brokers 1 and 2 on ports 9001 and 9002; partition p led by `leaders[p]`.
        fn answer_metadata(&mut self, leaders: &[i32]) {
            let mut w = Writer::new();
            w.i32(0).array_len(2);
            w.i32(1).string("b1").i32(9001).nullable_string(None);
            w.i32(2).string("b2").i32(9002).nullable_string(None);
            w.nullable_string(None).i32(1);
            w.array_len(1).i16(0).string("votes").bool(false).array_len(leaders.len());
            for (p, &leader) in leaders.iter().enumerate() {
                w.i16(0).i32(p as i32).i32(leader).array_len(0).array_len(0).array_len(0);
            }
            self.answer(protocol::API_METADATA, w.buf);
        }

        fn answer_produce(&mut self, code_for: impl Fn(i32) -> i16) {
            let i = self.requests.iter().position(|r| r.1 == protocol::API_PRODUCE).unwrap();
            let partitions = decode_produce(&self.requests[i].3);
            let mut w = Writer::new();
            w.array_len(1).string("votes").array_len(partitions.len());
            for (p, _) in &partitions {
                w.i32(*p).i16(code_for(*p)).i64(100).i64(-1).i64(0);
            }
            w.i32(0);
            self.answer(protocol::API_PRODUCE, w.buf);
        }

        /// Bootstrap on 9092, then metadata with the given leaders.
        fn start(&mut self, leaders: &[i32]) {
            self.step();
            self.connect(9092);
            self.answer_versions();
            self.answer_metadata(leaders);
            assert!(self.producer.is_ready(), "{:?}", self.logs);
        }

        fn send(&mut self, ticket: Ticket, key: &str) {
            self.producer.send(ticket, message(key), self.now);
        }
    }

    fn decode_produce(body: &[u8]) -> Vec<(i32, Vec<String>)> {
        let mut r = Reader::new(body);
        r.nullable_string("txn").unwrap();
        assert_eq!(r.i16("acks").unwrap(), -1, "acks=all");
        r.i32("timeout").unwrap();
        assert_eq!(r.array_len(1, "topics").unwrap(), 1);
        assert_eq!(r.string("topic").unwrap(), "votes");
        let mut out = Vec::new();
        for _ in 0..r.array_len(1, "partitions").unwrap() {
            let partition = r.i32("partition").unwrap();
            let len = r.i32("records").unwrap() as usize;
            let records = batch::decode(r.raw(len, "records").unwrap()).unwrap();
            let keys = records.into_iter().map(|r| String::from_utf8(r.0).unwrap()).collect();
            out.push((partition, keys));
        }
        out
    }

    fn config() -> Config {
        Config { linger_ms: 5, ..Config::default() }
    }

    #[test]
    fn batches_concurrent_votes_per_leader_and_acks_after_the_response() {
        let mut h = Harness::new(config());
        h.start(&[1, 1, 2, 2, 1, 2]);
        // Keys spread over partitions by murmur2 (see partition.rs).
        let keys = ["a", "idem-key-1", "0190f1e2-7c3a-7b2e-9d4f-1a2b3c4d5e6f", "", "x", "y"];
        for (ticket, key) in keys.iter().enumerate() {
            h.send(ticket as Ticket, key);
        }
        h.step();
        assert!(h.produced.is_empty(), "lingers before sending");
        h.now = 5;
        h.step();
        // Connections to both leaders are opened; nothing is sent before ApiVersions.
        let (c1, c2) = (h.connect(9001), h.connect(9002));
        assert!(h.produced.is_empty());
        h.answer_versions();
        h.answer_versions();
        assert_eq!(h.produced.len(), 2, "one request per leader");
        let total: usize =
            h.produced.iter().flat_map(|(_, ps)| ps.iter().map(|(_, k)| k.len())).sum();
        assert_eq!(total, keys.len());
        for (conn, partitions) in &h.produced {
            let leader = if *conn == c1 {
                1
            } else {
                assert_eq!(*conn, c2);
                2
            };
            for (p, _) in partitions {
                assert_eq!([1, 1, 2, 2, 1, 2][*p as usize], leader);
            }
        }
        assert!(h.delivered.is_empty(), "no answer before the ack");
        h.answer_produce(|_| 0);
        h.answer_produce(|_| 0);
        assert_eq!(h.delivered.len(), keys.len());
        assert!(h.delivered.iter().all(|(_, r)| r.is_ok()));
        assert_eq!(h.producer.pending(), 0);
        // The same partition as kafka-go's Murmur2Balancer (proto/testdata/vote_record.json).
        let fixture = h.delivered.iter().find(|(t, _)| *t == 2).unwrap();
        assert_eq!(fixture.1.as_ref().unwrap().partition, 4);
    }

    #[test]
    fn queues_votes_while_a_request_is_in_flight() {
        let mut h = Harness::new(Config { linger_ms: 0, max_in_flight: 1, ..Config::default() });
        h.start(&[1]);
        h.send(1, "a");
        h.step();
        h.connect(9001);
        h.answer_versions();
        assert_eq!(h.produced.len(), 1);
        for ticket in 2..=50 {
            h.send(ticket, &format!("k{ticket}"));
        }
        h.step();
        assert_eq!(h.produced.len(), 1, "waits for the in-flight request");
        h.answer_produce(|_| 0);
        assert_eq!(h.produced.len(), 2);
        assert_eq!(h.produced[1].1[0].1.len(), 49, "everything that waited goes in one batch");
    }

    #[test]
    fn follows_a_moved_leader() {
        let mut h = Harness::new(config());
        h.start(&[1]);
        h.send(1, "a");
        h.now = 5;
        h.step();
        h.connect(9001);
        h.answer_versions();
        h.answer_produce(|_| 6); // NOT_LEADER_OR_FOLLOWER
        assert!(h.delivered.is_empty(), "retried, not failed");
        h.now = 600;
        h.step();
        h.answer_metadata(&[2]);
        h.step();
        h.connect(9002);
        h.answer_versions();
        assert_eq!(h.produced.len(), 2);
        h.answer_produce(|_| 0);
        assert_eq!(h.delivered, vec![(1, Ok(Delivery { partition: 0, offset: 100 }))]);
    }

    #[test]
    fn fails_fast_while_kafka_is_down_and_recovers_on_its_own() {
        let mut h = Harness::new(config());
        h.step();
        h.send(1, "a");
        h.refuse(9092);
        assert_eq!(h.delivered.len(), 1);
        assert!(
            matches!(&h.delivered[0].1, Err(Error::Unavailable(why)) if why.contains("refused"))
        );
        assert!(!h.producer.is_ready());
        h.send(2, "b");
        h.step();
        assert!(matches!(h.delivered[1].1, Err(Error::Unavailable(_))), "refused at once");
        // After the backoff it tries again by itself.
        h.now = 500;
        h.step();
        h.connect(9092);
        h.answer_versions();
        h.answer_metadata(&[1]);
        assert!(h.producer.is_ready());
        assert_eq!(h.conn_to(9092), None, "the bootstrap connection is closed once used");
    }

    #[test]
    fn a_periodic_refresh_that_fails_backs_off() {
        let mut h = Harness::new(config());
        h.start(&[1]);
        h.now = 60_000; // metadata max age
        h.step();
        h.refuse(9092);
        assert!(!h.producer.is_ready());
        // Down: nothing more is tried until the backoff has passed, however often it ticks.
        for _ in 0..10 {
            h.step();
        }
        assert!(h.conns.is_empty(), "no reconnection storm: {:?}", h.conns);
        assert_eq!(h.producer.next_wakeup(), Some(60_250));
        h.now = 60_250;
        h.step();
        assert!(h.conn_to(9092).is_some(), "tries again after the backoff");
    }

    #[test]
    fn a_lost_connection_requeues_and_then_reports_unavailable() {
        let mut h = Harness::new(config());
        h.start(&[1]);
        h.send(1, "a");
        h.now = 5;
        h.step();
        let c = h.connect(9001);
        h.answer_versions();
        assert_eq!(h.produced.len(), 1);
        h.conns.remove(&c);
        h.producer.closed(c, "connection reset", h.now);
        h.step();
        assert!(h.delivered.is_empty());
        h.now = 600; // metadata is refreshed at most once per backoff
        h.step();
        // Kafka is gone: the bootstrap address refuses too, so the vote fails with a 503.
        h.refuse(9092);
        assert!(matches!(h.delivered[..], [(1, Err(Error::Unavailable(_)))]));
        assert_eq!(h.producer.stats().errors.get("connect"), Some(&1));
    }

    /// Without Kafka's idempotent producer (no producer id, no sequence numbers), a batch whose
    /// answer is lost is sent again whole: the broker may have written it the first time, so
    /// Kafka can hold the same records twice. Each vote is still answered once; the consumer
    /// counts a vote id once (docs/wasm.md, "Written twice").
    #[test]
    fn a_batch_whose_answer_is_lost_is_sent_again_whole() {
        let mut h = Harness::new(config());
        h.start(&[1]);
        h.send(1, "a");
        h.send(2, "b");
        h.now = 5;
        h.step();
        let c = h.connect(9001);
        h.answer_versions();
        assert_eq!(h.produced.len(), 1);
        // The broker may have appended the batch; the connection dies before its answer.
        h.conns.remove(&c);
        h.requests.retain(|r| r.0 != c);
        h.producer.closed(c, "connection reset", h.now);
        h.step();
        assert!(h.delivered.is_empty(), "requeued, not failed");
        h.now = 600;
        h.step();
        h.connect(9092);
        h.answer_versions();
        h.answer_metadata(&[1]);
        h.step();
        h.connect(9001);
        h.answer_versions();
        assert_eq!(h.produced.len(), 2);
        assert_eq!(h.produced[0].1, h.produced[1].1, "the same records, in the same partition");
        h.answer_produce(|_| 0);
        assert_eq!(
            h.delivered,
            vec![
                (1, Ok(Delivery { partition: 0, offset: 100 })),
                (2, Ok(Delivery { partition: 0, offset: 101 }))
            ]
        );
    }

    #[test]
    fn times_out_votes_that_wait_too_long() {
        let mut h = Harness::new(config());
        h.start(&[1]);
        h.send(1, "a");
        h.now = 5;
        h.step();
        // Broker 1 never answers the connection.
        h.now = 5_000;
        h.step();
        assert_eq!(h.delivered, vec![(1, Err(Error::TimedOut))]);
        assert_eq!(h.producer.pending(), 0);
    }

    #[test]
    fn fatal_errors_fail_the_vote() {
        let mut h = Harness::new(config());
        h.start(&[1]);
        h.send(1, "a");
        h.now = 5;
        h.step();
        h.connect(9001);
        h.answer_versions();
        h.answer_produce(|_| 10); // MESSAGE_TOO_LARGE
        assert_eq!(h.delivered, vec![(1, Err(Error::Rejected { code: 10 }))]);
        assert!(!Error::Rejected { code: 10 }.is_transient());
    }

    #[test]
    fn refuses_a_broker_without_our_versions() {
        let mut h = Harness::new(config());
        h.step();
        h.connect(9092);
        let mut w = Writer::new();
        w.i16(0).array_len(1).i16(0).i16(0).i16(2); // Produce v0-v2 only
        h.answer(protocol::API_VERSIONS, w.buf);
        assert!(!h.producer.is_ready());
        assert!(
            h.logs.iter().any(|l| l.contains("does not serve api 0 version 7")),
            "{:?}",
            h.logs
        );
    }

    #[test]
    fn a_missing_topic_means_not_ready() {
        let mut h = Harness::new(config());
        h.step();
        h.connect(9092);
        h.answer_versions();
        let mut w = Writer::new();
        w.i32(0).array_len(0).nullable_string(None).i32(1);
        w.array_len(1).i16(3).string("votes").bool(false).array_len(0);
        h.answer(protocol::API_METADATA, w.buf);
        assert!(!h.producer.is_ready());
        assert!(h.producer.status().contains("UNKNOWN_TOPIC_OR_PARTITION"));
    }

    #[test]
    fn caps_the_queue() {
        let mut h = Harness::new(Config { max_pending: 2, ..config() });
        h.step();
        for ticket in 1..=3 {
            h.send(ticket, "a");
        }
        h.step();
        assert_eq!(h.delivered, vec![(3, Err(Error::QueueFull))]);
    }
}
