//! Kafka's RecordBatch, magic v2 (https://kafka.apache.org/documentation/#recordbatch): the
//! only message format Kafka 4 accepts. Uncompressed, non-transactional, no idempotence
//! (producer id -1): votes are deduplicated downstream by their id, which is also the key.

use super::wire::Writer;

/// One record to append: the caller's bytes, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub headers: &'a [(String, Vec<u8>)],
    pub timestamp_ms: i64,
}

/// Bytes of a batch's header, from base offset to record count.
pub const BATCH_OVERHEAD: usize = 61;

/// Encodes `records` (at least one) as one RecordBatch v2.
pub fn encode<'a>(records: &[Record<'a>]) -> Vec<u8> {
    assert!(!records.is_empty(), "a record batch holds at least one record");
    let first_ts = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);

    let mut w = Writer::new();
    w.i64(0); // base offset: the broker assigns offsets
    w.i32(0); // batch length, patched below
    w.i32(-1); // partition leader epoch: set by the broker
    w.i8(2); // magic
    w.u32(0); // CRC-32C of everything after it, patched below
    let crc_start = w.buf.len();
    w.i16(0); // attributes: no compression, CreateTime, not transactional, not control
    w.i32(records.len() as i32 - 1); // last offset delta
    w.i64(first_ts).i64(max_ts);
    w.i64(-1).i16(-1).i32(-1); // producer id, epoch, base sequence: not idempotent
    w.i32(records.len() as i32);
    debug_assert_eq!(w.buf.len(), BATCH_OVERHEAD);

    let mut body = Writer::new();
    for (delta, record) in records.iter().enumerate() {
        body.buf.clear();
        body.i8(0); // record attributes, unused
        body.varlong(record.timestamp_ms - first_ts);
        body.varint(delta as i32);
        body.varint(record.key.len() as i32).raw(record.key);
        body.varint(record.value.len() as i32).raw(record.value);
        body.varint(record.headers.len() as i32);
        for (key, value) in record.headers {
            body.varint(key.len() as i32).raw(key.as_bytes());
            body.varint(value.len() as i32).raw(value);
        }
        w.varint(body.buf.len() as i32).raw(&body.buf);
    }

    let batch_length = (w.buf.len() - 12) as i32;
    w.buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c(&w.buf[crc_start..]);
    w.buf[crc_start - 4..crc_start].copy_from_slice(&crc.to_be_bytes());
    w.buf
}

/// An upper bound of the bytes `record` adds to a batch (varints at their widest).
pub fn record_size(record: &Record<'_>) -> usize {
    let headers: usize = record.headers.iter().map(|(k, v)| 10 + k.len() + v.len()).sum();
    1 + 10 + 5 + 5 + record.key.len() + 5 + record.value.len() + 5 + headers + 5
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as the batch checksum requires.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |crc, &b| TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8))
}

/// A decoded record, for tests: key, value, headers, timestamp.
#[cfg(test)]
pub(crate) type Decoded = (Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>, i64);

/// Reads a batch back, for tests: (key, value, headers, timestamp) per record.
#[cfg(test)]
pub(crate) fn decode(batch: &[u8]) -> Result<Vec<Decoded>, super::wire::Error> {
    use super::wire::{Error, Reader};
    let mut r = Reader::new(batch);
    r.i64("base offset")?;
    let length = r.i32("batch length")? as usize;
    if length != r.remaining() {
        return Err(Error::Invalid { what: "batch length" });
    }
    r.i32("leader epoch")?;
    if r.i8("magic")? != 2 {
        return Err(Error::Invalid { what: "magic" });
    }
    let crc = r.i32("crc")? as u32;
    if crc != crc32c(&batch[21..]) {
        return Err(Error::Invalid { what: "crc" });
    }
    r.i16("attributes")?;
    let last_delta = r.i32("last offset delta")?;
    let first_ts = r.i64("first timestamp")?;
    r.i64("max timestamp")?;
    r.i64("producer id")?;
    r.i16("producer epoch")?;
    r.i32("base sequence")?;
    let count = r.i32("count")?;
    if count != last_delta + 1 {
        return Err(Error::Invalid { what: "count" });
    }
    let mut out = Vec::new();
    for delta in 0..count {
        let len = r.varint("record length")? as usize;
        let mut rec = Reader::new(r.raw(len, "record")?);
        rec.i8("attributes")?;
        let ts = first_ts + rec.varlong("timestamp delta")?;
        if rec.varint("offset delta")? != delta {
            return Err(Error::Invalid { what: "offset delta" });
        }
        let n = rec.varint("key length")? as usize;
        let key = rec.raw(n, "key")?.to_vec();
        let n = rec.varint("value length")? as usize;
        let value = rec.raw(n, "value")?.to_vec();
        let mut headers = Vec::new();
        for _ in 0..rec.varint("header count")? {
            let n = rec.varint("header key length")? as usize;
            let k = String::from_utf8(rec.raw(n, "header key")?.to_vec()).unwrap();
            let n = rec.varint("header value length")? as usize;
            headers.push((k, rec.raw(n, "header value")?.to_vec()));
        }
        if rec.remaining() != 0 {
            return Err(Error::Invalid { what: "record length" });
        }
        out.push((key, value, headers, ts));
    }
    if r.remaining() != 0 {
        return Err(Error::Invalid { what: "trailing bytes" });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_values() {
        // The standard check value, and RFC 3720 (iSCSI) B.4's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn encodes_a_known_single_record_batch() {
        let headers = vec![("h".to_owned(), b"v".to_vec())];
        let batch =
            encode(&[Record { key: b"k", value: b"val", headers: &headers, timestamp_ms: 5 }]);
        let want_header = [
            0, 0, 0, 0, 0, 0, 0, 0, // base offset
            0, 0, 0, 64, // batch length: 49 after the length field + 15 of record
            0xFF, 0xFF, 0xFF, 0xFF, // leader epoch
            2,    // magic
        ];
        assert_eq!(batch[..17], want_header);
        // The record: length 14, attrs, ts delta 0, offset delta 0, key "k", value "val", 1 header.
        let record = [28, 0, 0, 0, 2, b'k', 6, b'v', b'a', b'l', 2, 2, b'h', 2, b'v'];
        assert_eq!(batch[BATCH_OVERHEAD..], record);
        assert!(
            record_size(&Record { key: b"k", value: b"val", headers: &headers, timestamp_ms: 5 })
                >= 15
        );
    }

    #[test]
    fn round_trips_many_records() {
        let headers = vec![("tally-route".to_owned(), b"wasm".to_vec())];
        let keys: Vec<String> = (0..300).map(|i| format!("key-{i}")).collect();
        let records: Vec<Record<'_>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Record {
                key: k.as_bytes(),
                value: &[0xAB; 200],
                headers: &headers,
                timestamp_ms: 1_795_460_000_000 + (i as i64 % 7),
            })
            .collect();
        let decoded = decode(&encode(&records)).unwrap();
        assert_eq!(decoded.len(), 300);
        assert_eq!(decoded[299].0, b"key-299");
        assert_eq!(decoded[13].3, 1_795_460_000_000 + 6);
        assert_eq!(decoded[1].2, headers);
        let mut corrupt = encode(&records);
        corrupt[100] ^= 1;
        assert!(decode(&corrupt).is_err());
    }
}
