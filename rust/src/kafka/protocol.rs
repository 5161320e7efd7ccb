//! The three Kafka requests the producer speaks, at fixed versions, and their responses.
//!
//! Versions are the newest non-flexible ones we need, all within what Kafka 2.1 through 4.x
//! serve (KIP-896 removed Produce v0-v2 and Metadata v0-v3 in Kafka 4.0):
//! ApiVersions v0 (checks the other two), Metadata v5, Produce v7.

use super::wire::{self, Reader, Writer};

pub const API_PRODUCE: i16 = 0;
pub const API_METADATA: i16 = 3;
pub const API_VERSIONS: i16 = 18;

pub const PRODUCE_VERSION: i16 = 7;
pub const METADATA_VERSION: i16 = 5;
pub const API_VERSIONS_VERSION: i16 = 0;

/// acks=all: the leader answers once every in-sync replica has the batch.
pub const ACKS_ALL: i16 = -1;

/// ApiVersions v0 request: an empty body.
pub fn api_versions_request(correlation_id: i32, client_id: &str) -> Vec<u8> {
    wire::request(API_VERSIONS, API_VERSIONS_VERSION, correlation_id, client_id, |_| {})
}

/// An API the broker serves and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: i16,
    pub min: i16,
    pub max: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    pub error_code: i16,
    pub apis: Vec<ApiRange>,
}

impl ApiVersionsResponse {
    pub fn parse(body: &[u8]) -> wire::Result<Self> {
        let mut r = Reader::new(body);
        let error_code = r.i16("error code")?;
        let mut apis = Vec::new();
        for _ in 0..r.array_len(6, "api keys")? {
            apis.push(ApiRange {
                api_key: r.i16("api key")?,
                min: r.i16("min version")?,
                max: r.i16("max version")?,
            });
        }
        Ok(ApiVersionsResponse { error_code, apis })
    }

    /// The first of our (api, version) pairs the broker does not serve, if any.
    pub fn missing(&self) -> Option<(i16, i16)> {
        [(API_PRODUCE, PRODUCE_VERSION), (API_METADATA, METADATA_VERSION)].into_iter().find(
            |&(key, version)| {
                !self.apis.iter().any(|a| a.api_key == key && (a.min..=a.max).contains(&version))
            },
        )
    }
}

/// Metadata v5 request for the given topics, never creating them.
pub fn metadata_request(correlation_id: i32, client_id: &str, topics: &[&str]) -> Vec<u8> {
    wire::request(API_METADATA, METADATA_VERSION, correlation_id, client_id, |w| {
        w.array_len(topics.len());
        for topic in topics {
            w.string(topic);
        }
        w.bool(false); // allow_auto_topic_creation
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub error_code: i16,
    pub partition: i32,
    /// -1 while the partition has no leader.
    pub leader: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub error_code: i16,
    pub name: String,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    pub brokers: Vec<Broker>,
    pub topics: Vec<TopicMetadata>,
}

impl MetadataResponse {
    pub fn parse(body: &[u8]) -> wire::Result<Self> {
        let mut r = Reader::new(body);
        r.i32("throttle time")?;
        let mut brokers = Vec::new();
        for _ in 0..r.array_len(12, "brokers")? {
            let node_id = r.i32("node id")?;
            let host = r.string("host")?;
            let port = r.i32("port")?;
            r.nullable_string("rack")?;
            brokers.push(Broker { node_id, host, port });
        }
        r.nullable_string("cluster id")?;
        r.i32("controller id")?;
        let mut topics = Vec::new();
        for _ in 0..r.array_len(9, "topics")? {
            let error_code = r.i16("topic error")?;
            let name = r.string("topic name")?;
            r.bool("is internal")?;
            let mut partitions = Vec::new();
            for _ in 0..r.array_len(22, "partitions")? {
                let error_code = r.i16("partition error")?;
                let partition = r.i32("partition index")?;
                let leader = r.i32("leader id")?;
                for what in ["replica nodes", "isr nodes", "offline replicas"] {
                    for _ in 0..r.array_len(4, what)? {
                        r.i32(what)?;
                    }
                }
                partitions.push(PartitionMetadata { error_code, partition, leader });
            }
            topics.push(TopicMetadata { error_code, name, partitions });
        }
        Ok(MetadataResponse { brokers, topics })
    }
}

/// Produce v7 request: one topic, a RecordBatch per partition, acks=all.
pub fn produce_request(
    correlation_id: i32,
    client_id: &str,
    timeout_ms: i32,
    topic: &str,
    batches: &[(i32, Vec<u8>)],
) -> Vec<u8> {
    wire::request(API_PRODUCE, PRODUCE_VERSION, correlation_id, client_id, |w: &mut Writer| {
        w.nullable_string(None); // transactional id
        w.i16(ACKS_ALL).i32(timeout_ms);
        w.array_len(1).string(topic);
        w.array_len(batches.len());
        for (partition, batch) in batches {
            w.i32(*partition).bytes(batch);
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
}

/// Produce v7 response: one result per partition written.
pub fn parse_produce_response(body: &[u8]) -> wire::Result<Vec<PartitionResult>> {
    let mut r = Reader::new(body);
    let mut results = Vec::new();
    for _ in 0..r.array_len(6, "topics")? {
        let topic = r.string("topic name")?;
        for _ in 0..r.array_len(30, "partitions")? {
            let partition = r.i32("partition index")?;
            let error_code = r.i16("error code")?;
            let base_offset = r.i64("base offset")?;
            r.i64("log append time")?;
            r.i64("log start offset")?;
            results.push(PartitionResult {
                topic: topic.clone(),
                partition,
                error_code,
                base_offset,
            });
        }
    }
    r.i32("throttle time")?;
    Ok(results)
}

/// The response header v0 every response here starts with: the correlation id, then the body.
pub fn split_response(frame: &[u8]) -> wire::Result<(i32, &[u8])> {
    let mut r = Reader::new(frame);
    let correlation_id = r.i32("correlation id")?;
    Ok((correlation_id, &frame[4..]))
}

/// Whether retrying the same request may succeed once metadata is refreshed or time passes.
pub fn is_retriable(code: i16) -> bool {
    matches!(
        code,
        // CORRUPT_MESSAGE (a bit flipped on the wire), UNKNOWN_TOPIC_OR_PARTITION,
        // LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
        // NOT_ENOUGH_REPLICAS(_AFTER_APPEND), NOT_CONTROLLER, KAFKA_STORAGE_ERROR,
        // FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFLINE... and THROTTLING_QUOTA_EXCEEDED.
        2 | 3 | 5 | 6 | 7 | 13 | 19 | 20 | 41 | 56 | 74 | 75 | 89
    )
}

/// Whether the error says our idea of the partition leader is stale.
pub fn is_leader_error(code: i16) -> bool {
    matches!(code, 3 | 5 | 6 | 13 | 56 | 74 | 75)
}

/// Kafka's name for an error code, for logs and error messages.
pub fn error_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        41 => "NOT_CONTROLLER",
        56 => "KAFKA_STORAGE_ERROR",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        87 => "INVALID_RECORD",
        89 => "THROTTLING_QUOTA_EXCEEDED",
        _ => "UNKNOWN_SERVER_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_request_bytes() {
        let frame = metadata_request(9, "c", &["votes"]);
        let want: &[u8] = &[
            0, 0, 0, 23, // size
            0, 3, 0, 5, 0, 0, 0, 9, 0, 1, b'c', // header
            0, 0, 0, 1, 0, 5, b'v', b'o', b't', b'e', b's', // topics
            0,    // allow_auto_topic_creation
        ];
        assert_eq!(frame, want);
    }

    fn metadata_response_body() -> Vec<u8> {
        let mut w = Writer::new();
        w.i32(0); // throttle
        w.array_len(2);
        w.i32(1).string("kafka-0").i32(9092).nullable_string(None);
        w.i32(2).string("10.0.0.2").i32(9093).nullable_string(Some("rack-a"));
        w.nullable_string(Some("cluster")).i32(1);
        w.array_len(1).i16(0).string("votes").bool(false);
        w.array_len(2);
        for (partition, leader) in [(0, 1), (1, -1)] {
            w.i16(if leader < 0 { 5 } else { 0 }).i32(partition).i32(leader);
            w.array_len(2).i32(1).i32(2); // replicas
            w.array_len(1).i32(1); // isr
            w.array_len(0); // offline
        }
        w.buf
    }

    #[test]
    fn parses_metadata() {
        let parsed = MetadataResponse::parse(&metadata_response_body()).unwrap();
        assert_eq!(parsed.brokers[1], Broker { node_id: 2, host: "10.0.0.2".into(), port: 9093 });
        let topic = &parsed.topics[0];
        assert_eq!((topic.name.as_str(), topic.partitions.len()), ("votes", 2));
        assert_eq!(
            topic.partitions[1],
            PartitionMetadata { error_code: 5, partition: 1, leader: -1 }
        );
        let body = metadata_response_body();
        assert!(MetadataResponse::parse(&body[..body.len() - 3]).is_err());
    }

    #[test]
    fn produce_round_trip() {
        let frame = produce_request(3, "c", 5000, "votes", &[(4, vec![1, 2, 3])]);
        let (body, _) = wire::split_frame(&frame).unwrap().unwrap();
        // After the header: null transactional id, acks -1, timeout, topic, one partition.
        let want: &[u8] = &[
            0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x13, 0x88, 0, 0, 0, 1, 0, 5, b'v', b'o', b't', b'e',
            b's', 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 3, 1, 2, 3,
        ];
        assert_eq!(&body[11..], want);

        let mut w = Writer::new();
        w.array_len(1).string("votes").array_len(1);
        w.i32(4).i16(6).i64(-1).i64(-1).i64(0);
        w.i32(0);
        let results = parse_produce_response(&w.buf).unwrap();
        assert_eq!(
            results,
            vec![PartitionResult {
                topic: "votes".into(),
                partition: 4,
                error_code: 6,
                base_offset: -1
            }]
        );
        assert!(is_retriable(6) && is_leader_error(6));
        assert!(!is_retriable(10));
    }

    #[test]
    fn api_versions_finds_what_is_missing() {
        let mut w = Writer::new();
        w.i16(0).array_len(2);
        w.i16(API_PRODUCE).i16(3).i16(12);
        w.i16(API_METADATA).i16(0).i16(4);
        let parsed = ApiVersionsResponse::parse(&w.buf).unwrap();
        assert_eq!(parsed.missing(), Some((API_METADATA, METADATA_VERSION)));
        let frame = api_versions_request(1, "c");
        assert_eq!(frame.len(), 4 + 11);
    }
}
