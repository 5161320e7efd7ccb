//! Per-client token buckets for POST /votes, the same as the Go front's (go/internal/httpapi,
//! ratelimit.go): who the client is (the connection's peer, or an X-Forwarded-For entry behind
//! trusted proxies, by the rule of proto/client_address_cases.json), and whether it has a token
//! left. The buckets are this process's own: each replica limits a client by itself.

use std::collections::HashMap;
use std::time::Instant;

use crate::config::RateLimit;

/// The rate limit as the producer applies it: the buckets, the trusted hops, and the instant the
/// buckets' clock counts from.
#[derive(Debug)]
pub struct Limiter {
    buckets: Buckets,
    trusted_hops: usize,
    epoch: Instant,
}

impl Limiter {
    pub fn new(settings: &RateLimit, epoch: Instant) -> Limiter {
        Limiter {
            buckets: Buckets::new(settings.per_second, settings.burst, settings.max_clients),
            trusted_hops: settings.trusted_hops,
            epoch,
        }
    }

    /// Takes a token for the request's client at `now`; without one, `Err` holds the seconds to
    /// wait (at least 1).
    pub fn admit(
        &mut self,
        forwarded_for: &[Vec<u8>],
        peer: &str,
        now: Instant,
    ) -> Result<(), u64> {
        let client = client_addr(forwarded_for, peer.as_bytes(), self.trusted_hops);
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.buckets.take(client, now_ms)
    }
}

/// Token buckets by client, at most `max` of them.
#[derive(Debug)]
pub struct Buckets {
    rate: f64,
    burst: f64,
    max: usize,
    buckets: HashMap<Vec<u8>, Bucket>,
    last_sweep_ms: Option<u64>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl Buckets {
    /// Buckets of `burst` tokens refilled at `rate` per second.
    pub fn new(rate: f64, burst: u32, max: usize) -> Buckets {
        Buckets { rate, burst: f64::from(burst), max, buckets: HashMap::new(), last_sweep_ms: None }
    }

    /// Takes a token of `client`'s bucket at `now_ms`; without one, `Err` says how many whole
    /// seconds until there is one (at least 1).
    pub fn take(&mut self, client: &[u8], now_ms: u64) -> Result<(), u64> {
        if !self.buckets.contains_key(client) {
            self.make_room(now_ms);
            self.buckets.insert(client.to_vec(), Bucket { tokens: self.burst, at_ms: now_ms });
        }
        let bucket = self.buckets.get_mut(client).expect("inserted above");
        if now_ms > bucket.at_ms {
            let elapsed = (now_ms - bucket.at_ms) as f64 / 1000.0;
            bucket.tokens = self.burst.min(bucket.tokens + elapsed * self.rate);
            bucket.at_ms = now_ms;
        }
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err((((1.0 - bucket.tokens) / self.rate).ceil() as u64).max(1))
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// A bucket full again is no different from none: those go first (at most once a second, or
    /// when the map is full); then, if still full, any.
    fn make_room(&mut self, now_ms: u64) {
        let full = self.buckets.len() >= self.max;
        if !full && self.last_sweep_ms.is_some_and(|at| now_ms.saturating_sub(at) < 1000) {
            return;
        }
        self.last_sweep_ms = Some(now_ms);
        let refill_ms = (self.burst / self.rate * 1000.0) as u64;
        self.buckets.retain(|_, b| now_ms.saturating_sub(b.at_ms) < refill_ms);
        while self.buckets.len() >= self.max {
            let Some(any) = self.buckets.keys().next().cloned() else { break };
            self.buckets.remove(&any);
        }
    }
}

/// The client's address by the rule of proto/client_address_cases.json, which the Go front applies
/// too: with `trusted_hops` 0 the connection's `peer`; else the entry `trusted_hops` from the
/// right of the X-Forwarded-For list (every header line, comma-separated, each entry trimmed of
/// spaces and tabs, empty ones ignored) followed by the peer, or its leftmost entry when the list
/// is shorter. Entries are bytes as the proxies wrote them: nothing is decoded or reinterpreted.
pub fn client_addr<'a>(
    forwarded_for: &'a [Vec<u8>],
    peer: &'a [u8],
    trusted_hops: usize,
) -> &'a [u8] {
    if trusted_hops == 0 {
        return peer;
    }
    let mut chain: Vec<&[u8]> = forwarded_for
        .iter()
        .flat_map(|value| value.split(|&b| b == b','))
        .map(trim_spaces_and_tabs)
        .filter(|entry| !entry.is_empty())
        .collect();
    chain.push(peer);
    chain[chain.len().saturating_sub(1 + trusted_hops)]
}

/// HTTP's optional white space around a list element (RFC 9110, 5.6.1): spaces and tabs only.
fn trim_spaces_and_tabs(mut entry: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = entry {
        entry = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = entry {
        entry = rest;
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::json::{self, Value};

    #[test]
    fn buckets_refill_and_stay_bounded() {
        let mut b = Buckets::new(2.0, 3, 100);
        let t0 = 1_000_000;
        for _ in 0..3 {
            assert_eq!(b.take(b"a", t0), Ok(()));
        }
        assert_eq!(b.take(b"a", t0), Err(1));
        assert_eq!(b.take(b"b", t0), Ok(()));
        assert_eq!(b.take(b"a", t0 + 500), Ok(()));
        for i in 0..1000 {
            let _ = b.take(format!("c{i}").as_bytes(), t0 + i);
        }
        assert!(b.len() <= 100, "{}", b.len());
        b.take(b"late", t0 + 3_600_000).unwrap();
        assert_eq!(b.len(), 1);
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The bytes of a case's member: `name` as text, or `name_hex` as hex.
    fn bytes(case: Value, name: &str) -> Option<Vec<u8>> {
        match case.get(name) {
            Some(text) => text.as_string().map(String::into_bytes),
            None => case.get(&format!("{name}_hex")).and_then(Value::as_string).map(|h| unhex(&h)),
        }
    }

    const TABLE: &[u8] = include_bytes!("../../proto/client_address_cases.json");

    /// Every case of the shared table, which the Go front runs too. Bazel gives the file as
    /// compile_data.
    #[test]
    fn client_addr_runs_every_shared_case() {
        let table = json::parse(TABLE).unwrap();
        let mut failures = Vec::new();
        let mut total = 0;
        for case in table.get("cases").and_then(Value::elements).expect("a cases array") {
            total += 1;
            let description = case.get("description").and_then(Value::as_string).unwrap();
            let lines: Vec<Vec<u8>> = match case.get("forwarded_for") {
                Some(lines) => {
                    lines.elements().unwrap().map(|l| l.as_string().unwrap().into()).collect()
                }
                None => case
                    .get("forwarded_for_hex")
                    .and_then(Value::elements)
                    .expect("forwarded_for or forwarded_for_hex")
                    .map(|l| unhex(&l.as_string().unwrap()))
                    .collect(),
            };
            let peer = case.get("peer").and_then(Value::as_string).unwrap();
            let hops = case.get("hops").and_then(Value::as_number).unwrap().parse().unwrap();
            let want = bytes(case, "client").expect("client or client_hex");
            let got = client_addr(&lines, peer.as_bytes(), hops);
            if got != want {
                failures.push(format!(
                    "{description}: got {:?}, want {:?}",
                    String::from_utf8_lossy(got),
                    String::from_utf8_lossy(&want)
                ));
            }
        }
        assert!(total > 0, "no cases");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The rate limit's settings take the shared table's defaults, and exactly its ranges.
    #[test]
    fn settings_follow_the_shared_table() {
        let table = json::parse(TABLE).unwrap();
        let read = |name: &str, value: Option<String>| {
            config::from_env(|n| match n {
                // On, so that the other settings show.
                "RATE_LIMIT_PER_SECOND" if name != n => Some("1".into()),
                _ if n == name => value.clone(),
                _ => None,
            })
        };
        let mut total = 0;
        for setting in table.get("settings").and_then(Value::elements).expect("a settings array") {
            total += 1;
            let name = setting.get("name").and_then(Value::as_string).unwrap();
            let number = |member: &str| -> f64 {
                setting.get(member).and_then(Value::as_number).unwrap().parse().unwrap()
            };
            let default = match name.as_str() {
                "RATE_LIMIT_PER_SECOND" => {
                    // Off by default: no limit at all.
                    assert_eq!(read(&name, None).unwrap().rate_limit, None, "{name}");
                    0.0
                }
                _ => {
                    let limit = read(&name, None).unwrap().rate_limit.unwrap();
                    match name.as_str() {
                        "RATE_LIMIT_BURST" => f64::from(limit.burst),
                        "TRUSTED_PROXY_HOPS" => limit.trusted_hops as f64,
                        "RATE_LIMIT_MAX_CLIENTS" => limit.max_clients as f64,
                        _ => panic!("{name}: a setting the producer does not read"),
                    }
                }
            };
            assert_eq!(default, number("default"), "{name}: default");
            let (min, max) = (number("min"), number("max"));
            for (value, ok) in [(min, true), (max, true), (min - 1.0, false), (max + 1.0, false)] {
                let got = read(&name, Some(format!("{value}")));
                assert_eq!(got.is_ok(), ok, "{name}={value}: {got:?}");
            }
        }
        assert_eq!(total, 4, "settings in the table");
    }
}
