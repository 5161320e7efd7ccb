//! HTTP/1.1 framing over byte buffers: request heads (parsed by `httparse`), bodies by
//! Content-Length or chunked, and responses. No I/O: the poll loop hands in what it has read and
//! sends what [`Response::write`] produces.
//!
//! Parsing restarts from the start of the buffer on every read; heads and bodies are capped at a
//! few KiB ([`MAX_HEAD`], the caller's body limit), so that costs nothing and keeps no state.

use std::fmt;

/// Largest request head (request line and headers) accepted; more is 431.
pub const MAX_HEAD: usize = 16 << 10;
/// Most headers in one request; more is 431 too.
pub const MAX_HEADERS: usize = 64;
/// The interim response a client waiting on `Expect: 100-continue` needs before sending a body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Why bytes are not an acceptable request. [`Error::status`] is the answer to send; the
/// connection is closed after it, since where the next request would start is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not HTTP/1.x (httparse's reason).
    Malformed(String),
    /// The head is over [`MAX_HEAD`] or has over [`MAX_HEADERS`] headers.
    HeadTooLarge,
    /// Content-Length is not a number, or several disagree.
    BadContentLength,
    /// A Transfer-Encoding other than chunked.
    UnsupportedTransferEncoding,
    /// A chunked body that does not parse.
    BadChunk,
    /// The body is over the caller's limit.
    BodyTooLarge { limit: usize },
    /// HTTP/x.y with x other than 1 (Go's net/http answers 505 too).
    VersionNotSupported,
    /// HTTP/1.1 without a Host header.
    MissingHost,
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::HeadTooLarge => 431,
            Error::UnsupportedTransferEncoding => 501,
            Error::VersionNotSupported => 505,
            Error::BodyTooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(why) => write!(f, "malformed request: {why}"),
            Error::HeadTooLarge => {
                write!(f, "request head over {MAX_HEAD} bytes or {MAX_HEADERS} headers")
            }
            Error::BadContentLength => f.write_str("invalid Content-Length"),
            Error::UnsupportedTransferEncoding => f.write_str("unsupported Transfer-Encoding"),
            Error::BadChunk => f.write_str("malformed chunked body"),
            Error::BodyTooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            Error::VersionNotSupported => f.write_str("unsupported protocol version"),
            Error::MissingHost => f.write_str("missing required Host header"),
        }
    }
}

impl std::error::Error for Error {}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// A request head: what the producer needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target without its query string.
    pub path: String,
    pub framing: Framing,
    /// Content-Type, as sent.
    pub content_type: Option<String>,
    /// Every Idempotency-Key header, raw bytes with surrounding spaces and tabs removed.
    pub idempotency_keys: Vec<Vec<u8>>,
    /// Every X-Forwarded-For header, likewise.
    pub forwarded_for: Vec<Vec<u8>>,
    pub expect_continue: bool,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// Bytes of the head, where the body starts.
    pub len: usize,
}

/// Parses a request head from the start of `buf`: `Ok(None)` until all of it has arrived.
///
/// Framing follows Go's net/http (the gRPC route's front), so both routes read the same bytes
/// the same way: HTTP/1.x of any minor version (1.2 and up read as 1.1), other majors 505; Host
/// required from 1.1; one Transfer-Encoding header, exactly `chunked`, ignored in 1.0; every
/// Content-Length header one decimal number, all of them equal.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    // The request line whole first: httparse would refuse a version it does not know (HTTP/1.2,
    // 2.0) as soon as its first bytes arrive, where Go reads the line, then decides.
    if !buf.contains(&b'\n') {
        return if buf.len() <= MAX_HEAD { Ok(None) } else { Err(Error::HeadTooLarge) };
    }
    let version = request_version(buf);
    // httparse knows HTTP/1.0 and 1.1 only. Go reads any HTTP/x.y, frames it as 1.0 (x < 1, or
    // 1.0) or 1.1, and answers 505 for x other than 1 once the framing is checked.
    let relabelled;
    let buf = match version {
        Some((major, minor)) if (major, minor) != (1, 0) && (major, minor) != (1, 1) => {
            let at = version_at(buf).expect("request_version found it");
            let mut copy = buf.to_vec();
            let as_version: &[u8] = if major == 0 { b"HTTP/1.0" } else { b"HTTP/1.1" };
            copy[at..at + 8].copy_from_slice(as_version);
            relabelled = copy;
            &relabelled[..]
        }
        _ => buf,
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
        Err(err) => return Err(Error::Malformed(err.to_string())),
    };
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default();
    let path = request_path(target).ok_or(Error::Malformed("invalid URL escape".into()))?;
    let http10 = request.version == Some(0);

    let mut head = Head {
        method,
        path,
        framing: Framing::Length(0),
        content_type: None,
        idempotency_keys: Vec::new(),
        forwarded_for: Vec::new(),
        expect_continue: false,
        keep_alive: !http10,
        len,
    };
    let mut content_length: Option<u64> = None;
    let mut transfer_encodings = Vec::new();
    let mut host = false;
    for header in request.headers.iter() {
        let value = trim(header.value);
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(Error::BadContentLength);
            }
            let n: u64 = std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or(Error::BadContentLength)?;
            if content_length.is_some_and(|seen| seen != n) {
                return Err(Error::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encodings.push(value);
        } else if name.eq_ignore_ascii_case("host") {
            host = true;
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type.get_or_insert_with(|| String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case("idempotency-key") {
            head.idempotency_keys.push(value.to_vec());
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            head.forwarded_for.push(value.to_vec());
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = !http10 && value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(|&b| b == b',').map(trim) {
                if option.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        }
    }
    let chunked = match transfer_encodings[..] {
        _ if http10 => false,
        [] => false,
        [coding] if coding.eq_ignore_ascii_case(b"chunked") => true,
        _ => return Err(Error::UnsupportedTransferEncoding),
    };
    if version.is_some_and(|(major, _)| major != 1) {
        return Err(Error::VersionNotSupported);
    }
    if !http10 && !host {
        return Err(Error::MissingHost);
    }
    // As in Go's net/http: chunked wins over Content-Length.
    head.framing = match (chunked, content_length) {
        (true, _) => Framing::Chunked,
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    Ok(Some(head))
}

/// The path a request target names, as Go's url.ParseRequestURI reads it (the gRPC route's front
/// routes on that): the query dropped, an absolute-form target's scheme and authority dropped,
/// %XX escapes decoded; `None` for a malformed escape (Go answers 400).
fn request_path(target: &str) -> Option<String> {
    let target = target.split('?').next().unwrap_or_default();
    let target = match target.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            rest.find('/').map_or("", |at| &rest[at..])
        }
        _ => target,
    };
    let bytes = target.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Where the request line's version starts, once the whole line is in.
fn version_at(buf: &[u8]) -> Option<usize> {
    let line_end = buf.iter().position(|&b| b == b'\n')?;
    let line = &buf[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let at = line.iter().rposition(|&b| b == b' ')? + 1;
    (line.len() - at == 8).then_some(at)
}

/// The request line's HTTP/x.y version, when the line is in and ends with one.
fn request_version(buf: &[u8]) -> Option<(u8, u8)> {
    let at = version_at(buf)?;
    match &buf[at..at + 8] {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Some((major - b'0', minor - b'0'))
        }
        _ => None,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_space(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// A complete body and how many bytes of the input it took (chunk framing included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub consumed: usize,
}

/// Reads the body that starts `buf` (the bytes after the head): `Ok(None)` until it is all there,
/// [`Error::BodyTooLarge`] as soon as it is known to be over `limit`.
pub fn read_body(framing: Framing, buf: &[u8], limit: usize) -> Result<Option<Body>, Error> {
    match framing {
        Framing::Length(n) if n > limit as u64 => Err(Error::BodyTooLarge { limit }),
        Framing::Length(n) => {
            let n = n as usize;
            Ok(buf.get(..n).map(|body| Body { bytes: body.to_vec(), consumed: n }))
        }
        Framing::Chunked => read_chunked(buf, limit),
    }
}

fn read_chunked(buf: &[u8], limit: usize) -> Result<Option<Body>, Error> {
    let mut bytes = Vec::new();
    let mut pos = 0;
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Error::BadChunk),
        };
        pos += used;
        if size == 0 {
            break;
        }
        if bytes.len() as u64 + size > limit as u64 {
            return Err(Error::BodyTooLarge { limit });
        }
        let size = size as usize;
        let Some(chunk) = buf.get(pos..pos + size + 2) else { return Ok(None) };
        if &chunk[size..] != b"\r\n" {
            return Err(Error::BadChunk);
        }
        bytes.extend_from_slice(&chunk[..size]);
        pos += size + 2;
    }
    // Trailer fields (ignored) end with an empty line.
    loop {
        let Some(end) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            if buf.len() - pos > MAX_HEAD {
                return Err(Error::HeadTooLarge);
            }
            return Ok(None);
        };
        pos += end + 2;
        if end == 0 {
            return Ok(Some(Body { bytes, consumed: pos }));
        }
    }
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
            close: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends the response to `out`; a HEAD request gets the headers alone. `Connection: close`
    /// is added when `self.close` is set.
    pub fn write(&self, out: &mut Vec<u8>, head_only: bool) {
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOTE: &[u8] =
        b"POST /votes?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
Idempotency-Key:  key 1\t\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn parses_a_head_once_complete() {
        assert_eq!(parse_head(&VOTE[..20]), Ok(None));
        let head = parse_head(VOTE).unwrap().unwrap();
        assert_eq!((head.method.as_str(), head.path.as_str()), ("POST", "/votes"));
        assert_eq!(head.content_type.as_deref(), Some("application/json"));
        assert_eq!(head.idempotency_keys, vec![b"key 1".to_vec()]);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive && !head.expect_continue);
        let body = read_body(head.framing, &VOTE[head.len..], 4096).unwrap().unwrap();
        assert_eq!(body, Body { bytes: b"hello".to_vec(), consumed: 5 });
        assert_eq!(read_body(head.framing, &VOTE[head.len..head.len + 4], 4096), Ok(None));
    }

    #[test]
    fn connection_semantics() {
        let head = |text: &str| parse_head(text.as_bytes()).unwrap().unwrap();
        assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(head("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n").expect_continue);
        // A later 1.x reads as 1.1 (Go's net/http does the same); 1.0 ignores Transfer-Encoding.
        assert!(head("GET / HTTP/1.2\r\nHost: h\r\n\r\n").keep_alive);
        let old =
            head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(old.framing, Framing::Length(2));
    }

    #[test]
    fn refuses_bad_framing() {
        let err = |text: &str| parse_head(text.as_bytes()).unwrap_err();
        assert_eq!(err("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Error::BadContentLength);
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Error::BadContentLength
        );
        assert_eq!(err("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").status(), 501);
        assert_eq!(err("GARBAGE\r\n\r\n").status(), 400);
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(err(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Error::HeadTooLarge);
        let long = format!("GET / HTTP/1.1\r\nX: {}", "y".repeat(MAX_HEAD));
        assert_eq!(err(&long), Error::HeadTooLarge);
        // Same length in two headers is fine; a list in one is not (Go's rules).
        let ok = parse_head(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
        );
        assert_eq!(ok.unwrap().unwrap().framing, Framing::Length(3));
        assert_eq!(err("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n"), Error::BadContentLength);
        assert_eq!(err("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n"), Error::BadContentLength);
        let two =
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(err(two).status(), 501);
        assert_eq!(err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, \r\n\r\n").status(), 501);
        assert_eq!(err("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"), Error::MissingHost);
        assert_eq!(err("GET / HTTP/2.0\r\nHost: h\r\n\r\n").status(), 505);
        assert_eq!(err("GET / HTTP/0.9\r\nHost: h\r\n\r\n").status(), 505);
        assert_eq!(err("GET / http/1.1\r\nHost: h\r\n\r\n").status(), 400);
        assert_eq!(err("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n").status(), 400);
        assert_eq!(err("GET /%7 HTTP/1.1\r\nHost: h\r\n\r\n").status(), 400);
        // Escapes and absolute-form targets name the path Go routes on.
        let path = |target: &str| {
            let text = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            parse_head(text.as_bytes()).unwrap().unwrap().path
        };
        assert_eq!(path("/%76otes?x=%zz"), "/votes");
        assert_eq!(path("http://producer/votes?x"), "/votes");
        assert_eq!(path("http://producer"), "");
    }

    #[test]
    fn reads_chunked_bodies() {
        let raw = b"4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let body = read_body(Framing::Chunked, raw, 4096).unwrap().unwrap();
        assert_eq!(body.bytes, b"{\"a\":1}");
        assert_eq!(&raw[body.consumed..], b"NEXT");
        for cut in 0..raw.len() - 4 {
            assert_eq!(read_body(Framing::Chunked, &raw[..cut], 4096), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            read_body(Framing::Chunked, b"1001\r\n", 4096),
            Err(Error::BodyTooLarge { limit: 4096 })
        );
        assert_eq!(read_body(Framing::Chunked, b"2\r\nabXX", 4096), Err(Error::BadChunk));
        assert_eq!(
            read_body(Framing::Length(4097), b"", 4096),
            Err(Error::BodyTooLarge { limit: 4096 })
        );
    }

    #[test]
    fn writes_responses() {
        let mut out = Vec::new();
        let response =
            Response::new(405, "application/json", b"{}\n".to_vec()).header("Allow", "POST");
        response.write(&mut out, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nAllow: POST\r\n\
             Content-Length: 3\r\n\r\n{}\n"
        );
        let mut out = Vec::new();
        Response { close: true, ..response }.write(&mut out, true);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"));
    }
}
