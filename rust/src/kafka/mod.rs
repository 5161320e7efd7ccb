//! A small Kafka producer, written for this one job and kept apart from I/O.
//!
//! - [`wire`]: primitive types and framing;
//! - [`protocol`]: ApiVersions v0, Metadata v5 and Produce v7, requests and responses;
//! - [`batch`]: RecordBatch v2 with its CRC-32C;
//! - [`partition`]: which partition a key goes to (kafka-go's `Hash`, or murmur2);
//! - [`producer`]: the state machine: connections, metadata, batching, retries, timeouts.
//!
//! Nothing here touches a socket or a clock: the WasmEdge binary moves the bytes and says what
//! time it is, so every behaviour runs in host unit tests. Why hand-written rather than the
//! `kafka-protocol` crate: docs/wasm.md.

pub mod batch;
pub mod partition;
pub mod producer;
pub mod protocol;
pub mod wire;

pub use partition::Partitioner;
pub use producer::{Config, ConnId, Delivery, Error, Output, Producer, Stats, Ticket};
