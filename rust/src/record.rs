//! The Kafka record of a vote, byte for byte what the Go producer writes
//! (go/internal/queue/record.go; proto/README.md, "The Kafka record").
//!
//! The value is `tally.vote.v1.Vote` in protobuf binary, encoded by hand: six scalar fields do
//! not justify a protobuf crate. Encoding follows Go's `proto.Marshal` exactly: fields in number
//! order, proto3 defaults (0, "") left out, int32 as sign-extended varints.
//! proto/testdata/vote_record.json holds Go's bytes for one vote; the tests compare against it.

use std::fmt;

use crate::vote::Vote;

pub const HEADER_ROUTE: &str = "tally-route";
pub const HEADER_ACCEPTED_AT: &str = "tally-accepted-at";
pub const HEADER_TYPE: &str = "content-type";
pub const CONTENT_TYPE: &str = "application/x-protobuf; messageType=tally.vote.v1.Vote";
/// This producer's route; the gRPC producer writes "grpc".
pub const ROUTE_WASM: &str = "wasm";

/// A validated vote with the id and accept time the producer gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRecord {
    pub vote: Vote,
    pub vote_id: String,
    pub accepted_at_unix_ms: i64,
}

/// Why a record cannot be written; the same checks as Go's `queue.Encode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NoVoteId,
    NoAcceptTime,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoVoteId => f.write_str("encode vote: no vote id"),
            Error::NoAcceptTime => f.write_str("encode vote: no accept time"),
        }
    }
}

impl std::error::Error for Error {}

/// A record ready for the Kafka client: key, value, headers and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: i64,
}

impl VoteRecord {
    /// The Kafka message for this vote: key = vote id, protobuf value, the three headers, and the
    /// accept time as the record timestamp.
    pub fn encode(&self) -> Result<Message, Error> {
        if self.vote_id.is_empty() {
            return Err(Error::NoVoteId);
        }
        if self.accepted_at_unix_ms == 0 {
            return Err(Error::NoAcceptTime);
        }
        let header = |key: &str, value: &str| (key.to_owned(), value.as_bytes().to_vec());
        Ok(Message {
            key: self.vote_id.as_bytes().to_vec(),
            value: self.value(),
            headers: vec![
                header(HEADER_ROUTE, ROUTE_WASM),
                header(HEADER_ACCEPTED_AT, &self.accepted_at_unix_ms.to_string()),
                header(HEADER_TYPE, CONTENT_TYPE),
            ],
            timestamp_ms: self.accepted_at_unix_ms,
        })
    }

    /// `tally.vote.v1.Vote` in protobuf binary.
    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.vote.name.len() + self.vote.album.len());
        put_string(&mut out, 1, &self.vote.name);
        put_string(&mut out, 2, &self.vote.album);
        put_int(&mut out, 3, i64::from(self.vote.year));
        put_int(&mut out, 4, i64::from(self.vote.rank));
        put_string(&mut out, 5, &self.vote_id);
        put_int(&mut out, 6, self.accepted_at_unix_ms);
        out
    }
}

const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;

fn put_string(out: &mut Vec<u8>, field: u64, text: &str) {
    if !text.is_empty() {
        put_varint(out, field << 3 | WIRE_LEN);
        put_varint(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
}

/// int32 and int64 alike: a negative number is its 64-bit two's complement (ten bytes).
fn put_int(out: &mut Vec<u8>, field: u64, value: i64) {
    if value != 0 {
        put_varint(out, field << 3 | WIRE_VARINT);
        put_varint(out, value as u64);
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{self, Value};

    /// Go's encoding of one vote (go/internal/queue, proto.Marshal), shared with the Go tests.
    const FIXTURE: &str = include_str!("../../proto/testdata/vote_record.json");

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn fixture() -> (VoteRecord, Value<'static>) {
        let root = json::parse(FIXTURE.as_bytes()).expect("fixture is JSON");
        let vote = root.get("vote").unwrap();
        let text = |name| vote.get(name).and_then(Value::as_string).unwrap();
        let number = |name| vote.get(name).and_then(Value::as_number).unwrap().parse().unwrap();
        let record = VoteRecord {
            vote: Vote {
                name: text("name"),
                album: text("album"),
                year: number("year") as i32,
                rank: number("rank") as i32,
            },
            vote_id: text("vote_id"),
            accepted_at_unix_ms: number("accepted_at_unix_ms"),
        };
        (record, root)
    }

    #[test]
    fn writes_the_go_bytes() {
        let (record, root) = fixture();
        let want = |name| root.get(name).and_then(Value::as_string).unwrap();
        assert_eq!(root.get("route").and_then(Value::as_string).unwrap(), ROUTE_WASM);
        let message = record.encode().unwrap();
        assert_eq!(hex(&message.value), want("value_hex"));
        assert_eq!(hex(&message.key), want("key_hex"));
        assert_eq!(message.timestamp_ms, record.accepted_at_unix_ms);

        let headers: Vec<(String, Vec<u8>)> = root
            .get("headers")
            .and_then(Value::elements)
            .unwrap()
            .map(|h| {
                let field = |name| h.get(name).and_then(Value::as_string).unwrap();
                (field("key"), field("value").into_bytes())
            })
            .collect();
        assert_eq!(message.headers, headers);

        // The producer's default partitioner puts the key where the Go producer does.
        let number = |name| root.get(name).and_then(Value::as_number).unwrap().parse().unwrap();
        let partitioner = crate::kafka::Config::default().partitioner;
        assert_eq!(partitioner.partition(&message.key, number("partitions")), number("partition"));
    }

    #[test]
    fn leaves_out_defaults_and_sign_extends_negatives() {
        let record = VoteRecord {
            vote: Vote { name: "a".into(), album: String::new(), year: -1, rank: 0 },
            vote_id: String::new(),
            accepted_at_unix_ms: 300,
        };
        // name, then year -1 as ten bytes, then accepted_at 300 = 0xAC 0x02.
        assert_eq!(hex(&record.value()), "0a016118ffffffffffffffffff0130ac02");
    }

    #[test]
    fn refuses_incomplete_records_like_go() {
        let (mut record, _) = fixture();
        record.accepted_at_unix_ms = 0;
        assert_eq!(record.encode().unwrap_err(), Error::NoAcceptTime);
        record.vote_id.clear();
        assert_eq!(record.encode().unwrap_err().to_string(), "encode vote: no vote id");
    }
}
