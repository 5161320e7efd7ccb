//! Kafka's primitive types and framing (https://kafka.apache.org/protocol#protocol_types):
//! big-endian integers, int16-length strings, int32-length arrays and bytes, zigzag varints, and
//! int32 size-prefixed frames. Only the non-flexible (pre-KIP-482) encodings: every message we
//! speak is at a version below the flexible ones.

use std::fmt;

/// Refuse response frames larger than this: a corrupt length must not make us buffer gigabytes.
pub const MAX_FRAME: usize = 64 << 20;

/// Why bytes are not the message they should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The message ended before `what` was read.
    Truncated { what: &'static str },
    /// `what` holds a value no broker would send (negative length, bad UTF-8...).
    Invalid { what: &'static str },
    /// A frame announced a size over [`MAX_FRAME`].
    FrameTooLarge { size: i64 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what } => write!(f, "message ends inside {what}"),
            Error::Invalid { what } => write!(f, "invalid {what}"),
            Error::FrameTooLarge { size } => write!(f, "frame of {size} bytes is over {MAX_FRAME}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Appends Kafka primitives to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(u8::from(v));
        self
    }
    /// STRING: int16 length, then UTF-8.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.i16(s.len() as i16);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    /// NULLABLE_STRING: length -1 for null.
    pub fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }
    /// BYTES / RECORDS: int32 length, then the bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.buf.extend_from_slice(b);
        self
    }
    /// ARRAY length (int32); the caller writes the elements.
    pub fn array_len(&mut self, n: usize) -> &mut Self {
        self.i32(n as i32)
    }
    /// VARINT: zigzag-encoded, 7 bits a byte, least significant first.
    pub fn varint(&mut self, v: i32) -> &mut Self {
        self.unsigned_varint(((v << 1) ^ (v >> 31)) as u32 as u64)
    }
    /// VARLONG: the 64-bit VARINT.
    pub fn varlong(&mut self, v: i64) -> &mut Self {
        self.unsigned_varint(((v << 1) ^ (v >> 63)) as u64)
    }
    fn unsigned_varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }
    /// Raw bytes, no length.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
}

/// Reads Kafka primitives from a response body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(Error::Truncated { what });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("take returns N bytes"))
    }

    pub fn i8(&mut self, what: &'static str) -> Result<i8> {
        Ok(self.array::<1>(what)?[0] as i8)
    }
    pub fn i16(&mut self, what: &'static str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }
    pub fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool> {
        Ok(self.i8(what)? != 0)
    }
    pub fn string(&mut self, what: &'static str) -> Result<String> {
        self.nullable_string(what)?.ok_or(Error::Invalid { what })
    }
    pub fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>> {
        let len = self.i16(what)?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize, what)?;
        let text = std::str::from_utf8(bytes).map_err(|_| Error::Invalid { what })?;
        Ok(Some(text.to_owned()))
    }
    /// An ARRAY's element count; null (-1) reads as empty. The count is checked against the bytes
    /// left (each element is at least `min_size` bytes), so a corrupt count cannot allocate much.
    pub fn array_len(&mut self, min_size: usize, what: &'static str) -> Result<usize> {
        let n = self.i32(what)?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n.saturating_mul(min_size.max(1)) > self.remaining() {
            return Err(Error::Truncated { what });
        }
        Ok(n)
    }
    pub fn varint(&mut self, what: &'static str) -> Result<i32> {
        let v = self.unsigned_varint(5, what)? as u32;
        Ok((v >> 1) as i32 ^ -((v & 1) as i32))
    }
    pub fn varlong(&mut self, what: &'static str) -> Result<i64> {
        let v = self.unsigned_varint(10, what)?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
    fn unsigned_varint(&mut self, max_bytes: usize, what: &'static str) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..max_bytes {
            let byte = self.array::<1>(what)?[0];
            v |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Invalid { what })
    }
    pub fn raw(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        self.take(n, what)
    }
}

/// Splits one size-prefixed frame off the front of `buf`: `Ok(None)` until it is all there,
/// then the frame (without its size) and how many bytes it took.
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let Some(size) = buf.get(..4) else { return Ok(None) };
    let size = i32::from_be_bytes(size.try_into().expect("four bytes"));
    if size < 0 || size as usize > MAX_FRAME {
        return Err(Error::FrameTooLarge { size: i64::from(size) });
    }
    let end = 4 + size as usize;
    Ok(buf.get(4..end).map(|frame| (frame, end)))
}

/// A request frame: size, header v1 (api key, version, correlation id, client id), then the body
/// written by `body`.
pub fn request(
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    client_id: &str,
    body: impl FnOnce(&mut Writer),
) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(0); // size, patched below
    w.i16(api_key).i16(api_version).i32(correlation_id).nullable_string(Some(client_id));
    body(&mut w);
    let size = (w.buf.len() - 4) as i32;
    w.buf[..4].copy_from_slice(&size.to_be_bytes());
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protocol_examples() {
        // Zigzag: 0→0, -1→1, 1→2, -64→127, 64→128 (0x80 0x01), i32::MIN→u32::MAX.
        let cases: [(i32, &[u8]); 6] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7F]),
            (64, &[0x80, 0x01]),
            (i32::MIN, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ];
        for (value, bytes) in cases {
            let mut w = Writer::new();
            w.varint(value);
            assert_eq!(w.buf, bytes, "{value}");
            assert_eq!(Reader::new(bytes).varint("v").unwrap(), value);
        }
        let mut w = Writer::new();
        w.varlong(i64::MIN).varlong(1_795_460_000_123);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.varlong("a").unwrap(), i64::MIN);
        assert_eq!(r.varlong("b").unwrap(), 1_795_460_000_123);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn reader_refuses_short_and_absurd_input() {
        assert_eq!(
            Reader::new(&[0, 5, b'a']).string("host"),
            Err(Error::Truncated { what: "host" })
        );
        assert_eq!(Reader::new(&[0xFF, 0xFF]).string("host"), Err(Error::Invalid { what: "host" }));
        assert_eq!(Reader::new(&[0xFF, 0xFF]).nullable_string("rack"), Ok(None));
        // A billion elements cannot fit in three bytes.
        let mut r = Reader::new(&[0x3B, 0x9A, 0xCA, 0x00, 1, 2, 3]);
        assert!(r.array_len(4, "brokers").is_err());
        assert!(Reader::new(&[0xFF; 11]).varlong("v").is_err());
    }

    #[test]
    fn frames_split_only_when_complete() {
        let frame = request(18, 0, 7, "tally", |_| {});
        // size 15: the header (2+2+4+2+5) and an empty body.
        assert_eq!(frame, b"\0\0\0\x0f\0\x12\0\0\0\0\0\x07\0\x05tally");
        assert_eq!(split_frame(&frame[..10]).unwrap(), None);
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let (body, used) = split_frame(&two).unwrap().unwrap();
        assert_eq!((body.len(), used), (15, 19));
        assert!(split_frame(&[0x7F, 0, 0, 0]).is_err());
    }
}
