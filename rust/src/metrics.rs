//! /metrics in the Prometheus text format, with the Go front's names and labels
//! (go/internal/httpapi: `tally_http_requests_total{path,method,code}`,
//! `tally_http_request_duration_seconds{path}` with the same buckets) plus the producer's Kafka
//! counters. Plain counters in a struct: one thread, no atomics, no crate.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};

use crate::api;
use crate::kafka::Stats;

/// Latency buckets: 0.25 ms doubling to about 4 s, as the Go front's.
pub const BUCKETS: [f64; 15] = {
    let mut buckets = [0.00025; 15];
    let mut i = 1;
    while i < 15 {
        buckets[i] = buckets[i - 1] * 2.0;
        i += 1;
    }
    buckets
};

/// Kinds of Kafka errors, always exported so every series exists from the start.
pub const KAFKA_ERROR_KINDS: [&str; 7] =
    ["refused", "connect", "disconnect", "timeout", "produce", "metadata", "protocol"];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and latencies, and votes refused because Kafka did not take them.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    refused: u64,
}

/// Point-in-time values the caller knows.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub kafka_ready: bool,
    pub pending_votes: usize,
    pub open_connections: usize,
}

/// The contract's paths keep their name; anything else is "other" (bounded label values).
pub fn path_label(path: &str) -> &'static str {
    [api::PATH_VOTES, api::PATH_HEALTHZ, api::PATH_READYZ, api::PATH_METRICS]
        .into_iter()
        .find(|p| *p == path)
        .unwrap_or("other")
}

pub fn method_label(method: &str) -> &'static str {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}

impl Metrics {
    /// Counts one answered request and its time from complete head to response.
    pub fn observe(&mut self, path: &str, method: &str, status: u16, seconds: f64) {
        let path = path_label(path);
        *self.requests.entry((path, method_label(method), status)).or_default() += 1;
        let h = self.latency.entry(path).or_default();
        for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// A vote answered 503 or 500 because Kafka did not take it.
    pub fn refused(&mut self) {
        self.refused += 1;
    }

    pub fn render(&self, kafka: &Stats, gauges: Gauges) -> String {
        let mut w = String::new();
        let requests = "tally_http_requests_total";
        let help = "HTTP requests answered, by path, method and status code.";
        header(&mut w, requests, "counter", help);
        for ((path, method, code), n) in &self.requests {
            let labels = format!("path=\"{path}\",method=\"{method}\",code=\"{code}\"");
            sample(&mut w, requests, &labels, n);
        }

        let latency = "tally_http_request_duration_seconds";
        let help = "Time from a request's headers to its response, by path.";
        header(&mut w, latency, "histogram", help);
        let bucket = format!("{latency}_bucket");
        for (path, h) in &self.latency {
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                sample(&mut w, &bucket, &format!("path=\"{path}\",le=\"{bound}\""), count);
            }
            sample(&mut w, &bucket, &format!("path=\"{path}\",le=\"+Inf\""), h.count);
            sample(&mut w, &format!("{latency}_sum"), &format!("path=\"{path}\""), h.sum);
            sample(&mut w, &format!("{latency}_count"), &format!("path=\"{path}\""), h.count);
        }

        let errors = "tally_kafka_errors_total";
        let help = "Kafka trouble: votes refused (503/500), and the producer's connection, \
                    timeout, produce, metadata and protocol errors.";
        header(&mut w, errors, "counter", help);
        for kind in KAFKA_ERROR_KINDS {
            let n = match kind {
                "refused" => self.refused,
                kind => kafka.errors.get(kind).copied().unwrap_or(0),
            };
            sample(&mut w, errors, &format!("kind=\"{kind}\""), n);
        }

        let counters = [
            (
                "tally_kafka_produce_requests_total",
                "Produce requests sent (acks=all).",
                kafka.produce_requests,
            ),
            (
                "tally_kafka_records_sent_total",
                "Records in produce requests, retries included.",
                kafka.records_sent,
            ),
            (
                "tally_kafka_records_acked_total",
                "Records acknowledged by Kafka.",
                kafka.records_acked,
            ),
        ];
        for (name, help, n) in counters {
            header(&mut w, name, "counter", help);
            sample(&mut w, name, "", n);
        }
        let gauges = [
            (
                "tally_kafka_ready",
                "1 when Kafka was reached and the topic found.",
                u64::from(gauges.kafka_ready),
            ),
            (
                "tally_kafka_pending_votes",
                "Votes waiting for Kafka's acknowledgement.",
                gauges.pending_votes as u64,
            ),
            (
                "tally_http_open_connections",
                "Client connections open.",
                gauges.open_connections as u64,
            ),
        ];
        for (name, help, n) in gauges {
            header(&mut w, name, "gauge", help);
            sample(&mut w, name, "", n);
        }
        w
    }
}

fn header(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(w: &mut String, name: &str, labels: &str, value: impl Display) {
    let _ = match labels {
        "" => writeln!(w, "{name} {value}"),
        labels => writeln!(w, "{name}{{{labels}}} {value}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_the_go_front() {
        assert_eq!(BUCKETS[0], 0.00025);
        assert_eq!(BUCKETS[14], 4.096);
    }

    #[test]
    fn renders_counters_histograms_and_kafka_errors() {
        let mut m = Metrics::default();
        m.observe("/votes", "POST", 202, 0.003);
        m.observe("/votes", "POST", 202, 0.0001);
        m.observe("/secret", "BREW", 404, 0.0001);
        m.refused();
        let mut stats = Stats::default();
        stats.errors.insert("connect", 2);
        let text =
            m.render(&stats, Gauges { kafka_ready: true, pending_votes: 3, open_connections: 1 });
        for want in [
            "tally_http_requests_total{path=\"/votes\",method=\"POST\",code=\"202\"} 2\n",
            "tally_http_requests_total{path=\"other\",method=\"other\",code=\"404\"} 1\n",
            "tally_http_request_duration_seconds_bucket{path=\"/votes\",le=\"0.00025\"} 1\n",
            "tally_http_request_duration_seconds_bucket{path=\"/votes\",le=\"0.004\"} 2\n",
            "tally_http_request_duration_seconds_bucket{path=\"/votes\",le=\"+Inf\"} 2\n",
            "tally_http_request_duration_seconds_count{path=\"/votes\"} 2\n",
            "tally_kafka_errors_total{kind=\"refused\"} 1\n",
            "tally_kafka_errors_total{kind=\"connect\"} 2\n",
            "tally_kafka_errors_total{kind=\"protocol\"} 0\n",
            "tally_kafka_ready 1\n",
            "# TYPE tally_http_request_duration_seconds histogram\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
