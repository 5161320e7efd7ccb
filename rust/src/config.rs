//! Settings from environment variables (WasmEdge passes them with `--env NAME=VALUE`). Names and
//! duration syntax follow the Go producer's where they mean the same thing (KAFKA_BROKERS,
//! KAFKA_BATCH_TIMEOUT, KAFKA_WRITE_TIMEOUT: go/cmd/grpc-producer); every malformed variable is
//! reported at once, so the producer stops at start naming them all.

use std::fmt;
use std::net::SocketAddrV4;

use crate::kafka;

/// Everything the producer binary needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddrV4,
    pub kafka: kafka::Config,
    /// The ballot file votes are checked against (a path the module can open: WasmEdge must
    /// preopen its directory with --dir); `None` when TALLY_BALLOT is unset or `off`.
    pub ballot: Option<String>,
    pub limits: Limits,
    /// The per-client rate limit of POST /votes; `None` when RATE_LIMIT_PER_SECOND is 0.
    pub rate_limit: Option<RateLimit>,
}

/// Each client's token bucket (docs/api.md, "Hostile clients").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    /// Proxies in front that append to X-Forwarded-For (0: the peer is the client).
    pub trusted_hops: usize,
    /// Most buckets kept.
    pub max_clients: usize,
}

/// How the producer bounds slow, idle and too many clients (docs/api.md, "Hostile clients").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection must send a whole request head within this of opening (or of its first byte
    /// after an idle keep-alive wait), or it is closed.
    pub header_timeout_ms: u64,
    /// ... and the body within this of the head.
    pub body_timeout_ms: u64,
    /// A keep-alive connection with no request under way is closed after this.
    pub idle_timeout_ms: u64,
    /// Connections served at once; a new one beyond gets 503 with Retry-After at once.
    pub max_connections: usize,
}

/// The variables that are wrong, each with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub Vec<String>);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for Error {}

/// The variables read, with their defaults, for `--help`-like messages and docs/wasm.md.
pub const VARIABLES: [(&str, &str, &str); 20] = [
    ("LISTEN_ADDR", "0.0.0.0:8081", "IPv4 address and port to serve HTTP on"),
    ("KAFKA_BROKERS", "127.0.0.1:9092", "bootstrap brokers, host:port, comma-separated"),
    ("KAFKA_BATCH_TIMEOUT", "5ms", "how long a partition's batch waits for more votes"),
    ("KAFKA_BATCH_MAX_RECORDS", "200", "most votes in one partition's batch"),
    ("KAFKA_BATCH_MAX_BYTES", "1048576", "largest batch, in bytes"),
    ("KAFKA_MAX_IN_FLIGHT", "2", "produce requests unanswered at once, per broker"),
    ("KAFKA_WRITE_TIMEOUT", "5s", "the broker's ack timeout, and the wait for any answer"),
    ("KAFKA_DELIVERY_TIMEOUT", "5s", "how long a vote may wait for its ack before a 503"),
    ("KAFKA_RETRY_BACKOFF", "250ms", "pause before reconnecting or retrying"),
    ("KAFKA_PARTITIONER", "murmur2", "murmur2 (the Go producer's) or hash (kafka-go's FNV-1a)"),
    ("KAFKA_CLIENT_ID", "tally-wasm-producer", "client id in the brokers' logs"),
    ("TALLY_BALLOT", "off", "the ballot file (proto/ballot.json) in a preopened dir, or off"),
    ("HTTP_HEADER_TIMEOUT", "5s", "time for a connection to send a whole request head"),
    ("HTTP_BODY_TIMEOUT", "10s", "time for the body, from the end of its head"),
    ("HTTP_IDLE_TIMEOUT", "30s", "an idle keep-alive connection is closed after this"),
    ("HTTP_MAX_CONNECTIONS", "16384", "connections at once; beyond, a quick 503"),
    ("RATE_LIMIT_PER_SECOND", "0", "each client's sustained votes per second; 0: no limit"),
    ("RATE_LIMIT_BURST", "20", "votes a quiet client may send at once"),
    ("TRUSTED_PROXY_HOPS", "0", "proxies in front appending to X-Forwarded-For"),
    ("RATE_LIMIT_MAX_CLIENTS", "100000", "most clients whose buckets are kept"),
];

/// Reads the settings through `get` (the process environment in the binary, a map in tests).
/// Unset or blank variables take their defaults.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
    let mut errors = Vec::new();
    let value = |name: &str| {
        let default = VARIABLES.iter().find(|v| v.0 == name).map(|v| v.1).unwrap_or("");
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or(default.to_owned())
    };
    let mut check = |name: &str, why: Option<String>| {
        if let Some(why) = why {
            errors.push(format!("{name}={:?}: {why}", value(name)));
        }
    };

    let listen = value("LISTEN_ADDR").parse::<SocketAddrV4>();
    check(
        "LISTEN_ADDR",
        listen.as_ref().err().map(|_| "want IPv4:port, such as 0.0.0.0:8081".into()),
    );

    let brokers: Result<Vec<(String, u16)>, String> = value("KAFKA_BROKERS")
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| match b.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                port.parse().map(|p| (host.to_owned(), p)).map_err(|_| format!("bad port in {b}"))
            }
            _ => Err(format!("{b} is not host:port")),
        })
        .collect();
    check("KAFKA_BROKERS", brokers.as_ref().err().cloned());

    let mut kafka = kafka::Config::default();
    let mut duration = |name: &str, slot: &mut u64| match parse_duration_ms(&value(name)) {
        Some(ms) => *slot = ms,
        None => check(name, Some("want a duration such as 5ms or 2s".into())),
    };
    duration("KAFKA_BATCH_TIMEOUT", &mut kafka.linger_ms);
    duration("KAFKA_WRITE_TIMEOUT", &mut kafka.request_timeout_ms);
    duration("KAFKA_DELIVERY_TIMEOUT", &mut kafka.delivery_timeout_ms);
    duration("KAFKA_RETRY_BACKOFF", &mut kafka.retry_backoff_ms);
    let mut limits =
        Limits { header_timeout_ms: 0, body_timeout_ms: 0, idle_timeout_ms: 0, max_connections: 0 };
    duration("HTTP_HEADER_TIMEOUT", &mut limits.header_timeout_ms);
    duration("HTTP_BODY_TIMEOUT", &mut limits.body_timeout_ms);
    duration("HTTP_IDLE_TIMEOUT", &mut limits.idle_timeout_ms);
    let mut count = |name: &str, slot: &mut usize, max: usize| match value(name).parse() {
        Ok(n) if (1..=max).contains(&n) => *slot = n,
        _ => check(name, Some(format!("want an integer from 1 to {max}"))),
    };
    count("KAFKA_BATCH_MAX_RECORDS", &mut kafka.batch_max_records, 100_000);
    count("KAFKA_BATCH_MAX_BYTES", &mut kafka.batch_max_bytes, 64 << 20);
    count("KAFKA_MAX_IN_FLIGHT", &mut kafka.max_in_flight, 100);
    count("HTTP_MAX_CONNECTIONS", &mut limits.max_connections, 1 << 20);
    let (mut burst, mut max_clients) = (0, 0);
    count("RATE_LIMIT_BURST", &mut burst, 1_000_000);
    count("RATE_LIMIT_MAX_CLIENTS", &mut max_clients, 10_000_000);
    let mut trusted_hops = 0;
    match value("TRUSTED_PROXY_HOPS").parse() {
        Ok(n) if n <= 16 => trusted_hops = n,
        _ => check("TRUSTED_PROXY_HOPS", Some("want an integer from 0 to 16".into())),
    }
    let per_second = match value("RATE_LIMIT_PER_SECOND").parse::<f64>() {
        Ok(n) if (0.0..=1e6).contains(&n) => n,
        _ => {
            check("RATE_LIMIT_PER_SECOND", Some("want a number from 0 to 1e6".into()));
            0.0
        }
    };
    let rate_limit = (per_second > 0.0).then_some(RateLimit {
        per_second,
        burst: burst as u32,
        trusted_hops,
        max_clients,
    });
    match value("KAFKA_PARTITIONER").parse() {
        Ok(p) => kafka.partitioner = p,
        Err(err) => check("KAFKA_PARTITIONER", Some(format!("{err}"))),
    }
    kafka.client_id = value("KAFKA_CLIENT_ID");
    if kafka.request_timeout_ms > i32::MAX as u64 {
        check("KAFKA_WRITE_TIMEOUT", Some("too long".into()));
    }

    let ballot = Some(value("TALLY_BALLOT")).filter(|path| path != crate::vote::BALLOT_OFF);

    match (listen, brokers) {
        (Ok(listen), Ok(bootstrap)) if errors.is_empty() && !bootstrap.is_empty() => Ok(Settings {
            listen,
            kafka: kafka::Config { bootstrap, ..kafka },
            ballot,
            limits,
            rate_limit,
        }),
        _ => Err(Error(errors)),
    }
}

/// A Go-style single-unit duration ("250us", "5ms", "1.5s", "2m"), in whole milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let ms = match unit {
        "us" | "µs" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    };
    (0.0..1e12).contains(&ms).then(|| ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults() {
        let s = from_env(env(&[])).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:8081");
        assert_eq!(s.kafka.bootstrap, vec![("127.0.0.1".to_owned(), 9092)]);
        assert_eq!(s.kafka.linger_ms, 5);
        assert_eq!(s.kafka.partitioner, kafka::Partitioner::Murmur2);
        assert_eq!(s.ballot, None);
        let limits = Limits {
            header_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            max_connections: 16_384,
        };
        assert_eq!(s.limits, limits);
        assert_eq!(s.rate_limit, None);
        let s = from_env(env(&[("RATE_LIMIT_PER_SECOND", "0.5"), ("TRUSTED_PROXY_HOPS", "1")]))
            .unwrap();
        let rate = RateLimit { per_second: 0.5, burst: 20, trusted_hops: 1, max_clients: 100_000 };
        assert_eq!(s.rate_limit, Some(rate));
        let s = from_env(env(&[("TALLY_BALLOT", "/ballot/ballot.json")])).unwrap();
        assert_eq!(s.ballot.as_deref(), Some("/ballot/ballot.json"));
    }

    #[test]
    fn reads_everything() {
        let s = from_env(env(&[
            ("LISTEN_ADDR", "127.0.0.1:9000"),
            ("KAFKA_BROKERS", " k1:9092, ,tally-kafka-bootstrap:9093 "),
            ("KAFKA_BATCH_TIMEOUT", "0ms"),
            ("KAFKA_WRITE_TIMEOUT", "1.5s"),
            ("KAFKA_MAX_IN_FLIGHT", "5"),
            ("KAFKA_PARTITIONER", "hash"),
        ]))
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.kafka.bootstrap[1], ("tally-kafka-bootstrap".to_owned(), 9093));
        assert_eq!((s.kafka.linger_ms, s.kafka.request_timeout_ms), (0, 1500));
        assert_eq!(s.kafka.max_in_flight, 5);
        assert_eq!(s.kafka.partitioner, kafka::Partitioner::Fnv1a);
    }

    #[test]
    fn names_every_bad_variable() {
        let err = from_env(env(&[
            ("LISTEN_ADDR", ":8081"),
            ("KAFKA_BROKERS", "k1"),
            ("KAFKA_BATCH_TIMEOUT", "soon"),
            ("KAFKA_MAX_IN_FLIGHT", "0"),
            ("KAFKA_PARTITIONER", "crc"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "LISTEN_ADDR",
            "KAFKA_BROKERS",
            "KAFKA_BATCH_TIMEOUT",
            "KAFKA_MAX_IN_FLIGHT",
            "KAFKA_PARTITIONER",
        ] {
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250us"), Some(0));
        assert_eq!(parse_duration_ms("1500us"), Some(2));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("5"), None);
        assert_eq!(parse_duration_ms("5h"), None);
        assert_eq!(parse_duration_ms("ms"), None);
    }
}
