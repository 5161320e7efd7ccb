//! UUIDv7 vote ids (RFC 9562): 48 bits of Unix milliseconds, then random bits.
//!
//! The caller brings the clock and the randomness (WASI `clock_time_get` and `random_get` in the
//! producer), so this module stays pure and its output is testable.

use std::fmt;

/// A UUID, displayed in the usual lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid([u8; 16]);

/// How many random bytes [`v7`] consumes: 74 of their 80 bits are used.
pub const RANDOM_BYTES: usize = 10;

/// A version-7 UUID for `unix_ms` (truncated to 48 bits, good until the year 10889).
pub fn v7(unix_ms: u64, random: [u8; RANDOM_BYTES]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random);
    bytes[6] = 0x70 | (bytes[6] & 0x0F); // version 7
    bytes[8] = 0x80 | (bytes[8] & 0x3F); // variant 0b10
    Uuid(bytes)
}

impl Uuid {
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_example() {
        // RFC 9562, appendix A.6: 2022-02-22 19:22:22 UTC, with its random bits.
        let random = [0x0C, 0xC3, 0x18, 0xC4, 0xDC, 0x0C, 0x0C, 0x07, 0x39, 0x8F];
        let id = v7(0x017F_22E2_79B0, random);
        assert_eq!(id.to_string(), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
    }

    #[test]
    fn sets_version_and_variant_whatever_the_randomness() {
        for fill in [0x00, 0xFF, 0x5A] {
            let id = v7(1_795_460_000_123, [fill; RANDOM_BYTES]);
            let text = id.to_string();
            assert_eq!(text.len(), 36);
            assert_eq!(&text[14..15], "7", "{text}");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
            assert_eq!(id.as_bytes()[..6], 1_795_460_000_123u64.to_be_bytes()[2..]);
        }
    }

    #[test]
    fn sorts_by_time() {
        let earlier = v7(1_000, [0xFF; RANDOM_BYTES]).to_string();
        let later = v7(1_001, [0x00; RANDOM_BYTES]).to_string();
        assert!(earlier < later);
    }
}
