//! Per-client token buckets for POST /votes, the same as the Go front's (go/internal/httpapi,
//! ratelimit.go): who the client is (the connection's peer, or an X-Forwarded-For entry behind
//! trusted proxies), and whether it has a token left.

use std::collections::HashMap;

/// Token buckets by client, at most `max` of them.
#[derive(Debug)]
pub struct Buckets {
    rate: f64,
    burst: f64,
    max: usize,
    buckets: HashMap<String, Bucket>,
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
    pub fn take(&mut self, client: &str, now_ms: u64) -> Result<(), u64> {
        if !self.buckets.contains_key(client) {
            self.make_room(now_ms);
            self.buckets.insert(client.to_owned(), Bucket { tokens: self.burst, at_ms: now_ms });
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

/// The client's address: the entry `trusted_hops` from the right of the X-Forwarded-For list
/// (every such header, comma-separated entries) followed by the connection's `peer`; the
/// leftmost entry when the list is shorter.
pub fn client_addr(forwarded_for: &[Vec<u8>], peer: &str, trusted_hops: usize) -> String {
    if trusted_hops == 0 {
        return peer.to_owned();
    }
    let mut chain: Vec<String> = forwarded_for
        .iter()
        .flat_map(|value| value.split(|&b| b == b','))
        .map(|entry| String::from_utf8_lossy(entry.trim_ascii()).into_owned())
        .collect();
    chain.push(peer.to_owned());
    chain[chain.len().saturating_sub(1 + trusted_hops)].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_stay_bounded() {
        let mut b = Buckets::new(2.0, 3, 100);
        let t0 = 1_000_000;
        for _ in 0..3 {
            assert_eq!(b.take("a", t0), Ok(()));
        }
        assert_eq!(b.take("a", t0), Err(1));
        assert_eq!(b.take("b", t0), Ok(()));
        assert_eq!(b.take("a", t0 + 500), Ok(()));
        for i in 0..1000 {
            let _ = b.take(&format!("c{i}"), t0 + i);
        }
        assert!(b.len() <= 100, "{}", b.len());
        b.take("late", t0 + 3_600_000).unwrap();
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn trusts_only_the_configured_hops() {
        let xff = [b"6.6.6.6, 1.2.3.4".to_vec(), b"203.0.113.7".to_vec()];
        for (hops, want) in [(0, "10.0.0.9"), (1, "203.0.113.7"), (2, "1.2.3.4"), (9, "6.6.6.6")] {
            assert_eq!(client_addr(&xff, "10.0.0.9", hops), want);
        }
        assert_eq!(client_addr(&[], "10.0.0.9", 1), "10.0.0.9");
    }
}
