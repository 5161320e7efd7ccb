//! Which partition a key goes to. Both producers must agree, so a vote id lands on the same
//! partition whichever route accepted it (docs/wasm.md, "Partitioning").
//!
//! The default is murmur2, what the Go producer uses (go/internal/produce: kafka-go's
//! `Murmur2Balancer`, the partitioner of Kafka's Java client): murmur2 of the key with Kafka's
//! seed, sign bit cleared, modulo the partition count. kafka-go's other keyed balancer, `Hash`
//! (FNV-1a, Sarama's), is here too in case the Go producer ever switches (KAFKA_PARTITIONER=hash).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// kafka-go `Murmur2Balancer`, Kafka's Java default: the Go producer's choice.
    Murmur2,
    /// kafka-go `Hash`, Sarama: FNV-1a.
    Fnv1a,
}

impl Partitioner {
    /// The partition of `key` among `partitions` (> 0) partitions numbered from 0.
    pub fn partition(self, key: &[u8], partitions: i32) -> i32 {
        assert!(partitions > 0, "a topic has at least one partition");
        match self {
            Partitioner::Fnv1a => ((fnv1a(key) as i32) % partitions).abs(),
            Partitioner::Murmur2 => ((murmur2(key) & 0x7FFF_FFFF) % partitions as u32) as i32,
        }
    }
}

/// Not a partitioner name we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPartitioner(pub String);

impl fmt::Display for UnknownPartitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown partitioner {:?} (want \"hash\" or \"murmur2\")", self.0)
    }
}

impl std::error::Error for UnknownPartitioner {}

impl FromStr for Partitioner {
    type Err = UnknownPartitioner;

    /// "murmur2", or "hash" (kafka-go's name for its FNV-1a balancer).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hash" | "fnv1a" => Ok(Partitioner::Fnv1a),
            "murmur2" => Ok(Partitioner::Murmur2),
            _ => Err(UnknownPartitioner(s.to_owned())),
        }
    }
}

pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5BD1_E995;
    let mut h = 0x9747_B28C ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("four bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions among 6 computed by kafka-go v0.4.51's Hash and Murmur2Balancer.
    const KAFKA_GO: [(&str, i32, i32); 6] = [
        ("0190f1e2-7c3a-7b2e-9d4f-1a2b3c4d5e6f", 2, 4),
        ("a", 0, 4),
        ("idem-key-1", 4, 2),
        ("", 3, 3),
        ("21", 0, 0),
        ("foobar", 0, 0),
    ];

    #[test]
    fn agrees_with_kafka_go() {
        for (key, hash, murmur) in KAFKA_GO {
            assert_eq!(Partitioner::Fnv1a.partition(key.as_bytes(), 6), hash, "hash {key:?}");
            assert_eq!(
                Partitioner::Murmur2.partition(key.as_bytes(), 6),
                murmur,
                "murmur2 {key:?}"
            );
        }
    }

    #[test]
    fn murmur2_matches_kafkas_own_test_vectors() {
        // org.apache.kafka.common.utils.UtilsTest#testMurmur2
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key) as i32, want, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn fnv1a_check_values() {
        assert_eq!(fnv1a(b""), 0x811C_9DC5);
        assert_eq!(fnv1a(b"a"), 0xE40C_292C);
        assert_eq!(fnv1a(b"foobar"), 0xBF9C_F968);
    }

    #[test]
    fn names() {
        assert_eq!("hash".parse(), Ok(Partitioner::Fnv1a));
        assert_eq!("murmur2".parse(), Ok(Partitioner::Murmur2));
        assert!("crc32".parse::<Partitioner>().is_err());
    }
}
