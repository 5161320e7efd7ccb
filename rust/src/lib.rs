//! Tally's Wasm producer: votes over HTTP, written to Kafka from inside WasmEdge (docs/wasm.md).
//!
//! The library does the work and touches no socket or clock, so it builds unchanged for the host
//! (where every test runs) and for wasm32-wasip1. The binary `wasm_producer`
//! (src/bin/wasm_producer/) is the shell: WasmEdge's socket calls and one poll loop moving bytes
//! between these modules.
//!
//! - [`json`]: a strict JSON reader over raw bytes, faithful to Go's encoding/json.
//! - [`vote`]: the vote rules shared with Go through proto/vote_cases.json.
//! - [`http`]: HTTP/1.1 request heads and bodies in, responses out.
//! - [`api`]: the HTTP contract (docs/api.md): routes, statuses, error bodies, vote ids.
//! - [`conn`]: one client connection without its socket: framing, `100 Continue`, end of
//!   stream, the rate limit's admission, deadlines.
//! - [`uuid`]: UUIDv7 vote ids from a clock reading and random bytes.
//! - [`record`]: the vote's Kafka record, byte for byte the Go producer's.
//! - [`kafka`]: a small Kafka producer: wire codec, RecordBatch v2, partitioner, and a state
//!   machine for connections, metadata, batching and retries.
//! - [`metrics`]: /metrics in the Prometheus text format.
//! - [`config`]: settings from environment variables.
//! - [`ratelimit`]: per-client token buckets and who the client is behind proxies (the rule of
//!   proto/client_address_cases.json).
//!
//! Errors are small enums per module, with `Display` written by hand.

pub mod api;
pub mod config;
pub mod conn;
pub mod http;
pub mod json;
pub mod kafka;
pub mod metrics;
pub mod ratelimit;
pub mod record;
pub mod uuid;
pub mod vote;
