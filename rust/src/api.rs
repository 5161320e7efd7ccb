//! The producer's HTTP contract (docs/api.md), the same as the Go front's (go/internal/front):
//! what each request gets, decided from its head and body with no I/O.
//!
//! POST /votes is checked in Go's order: method (405 with Allow), Content-Type (415), size (413),
//! Idempotency-Key (400), then the vote rules of [`crate::vote`] (400 naming the field). A vote
//! that passes becomes a [`VoteRecord`]; its 202 (or 503) is written once Kafka has answered.
//! Every error body is `{"error": ..., "field": ...}` (field only when one part is at fault).

use crate::http::{self, Head, Response};
use crate::json::quote;
use crate::kafka;
use crate::record::VoteRecord;
use crate::uuid;
use crate::vote;

/// Largest vote body; larger is 413.
pub const MAX_BODY: usize = 4 << 10;
/// Longest Idempotency-Key (go/internal/vote.IDMaxChars).
pub const ID_MAX_CHARS: usize = 128;
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER: &str = "1";

pub const PATH_VOTES: &str = "/votes";
pub const PATH_HEALTHZ: &str = "/healthz";
pub const PATH_READYZ: &str = "/readyz";
pub const PATH_METRICS: &str = "/metrics";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Vote,
    Healthz,
    Readyz,
    Metrics,
}

/// What to do with a request whose head has arrived: `Err` is the answer already.
/// `content_length` checks (413) happen here too, so an oversized body is never read.
pub fn route(head: &Head) -> Result<Route, Response> {
    let (route, allowed): (Route, &[&str]) = match head.path.as_str() {
        PATH_VOTES => (Route::Vote, &["POST"]),
        PATH_HEALTHZ => (Route::Healthz, &["GET", "HEAD"]),
        PATH_READYZ => (Route::Readyz, &["GET", "HEAD"]),
        PATH_METRICS => (Route::Metrics, &["GET", "HEAD"]),
        path => return Err(error(404, &format!("no such path: {path}"), None)),
    };
    if !allowed.contains(&head.method.as_str()) {
        let allowed = allowed.join(", ");
        let message = format!("method {} not allowed; allowed: {allowed}", head.method);
        return Err(error(405, &message, None).header("Allow", allowed));
    }
    if route == Route::Vote {
        if !is_json(head.content_type.as_deref().unwrap_or("")) {
            let message = "Content-Type must be application/json (charset, if given, utf-8)";
            return Err(error(415, message, Some("Content-Type")));
        }
        if matches!(head.framing, http::Framing::Length(n) if n > MAX_BODY as u64) {
            return Err(too_large());
        }
    }
    Ok(route)
}

/// The 413 answer.
pub fn too_large() -> Response {
    error(413, &format!("body larger than {MAX_BODY} bytes"), Some("body"))
}

/// The answer to a body that could not be read: 413 when too large, else 400 naming the body
/// (a malformed chunk), as the Go front's reading of the body answers.
pub fn bad_body(err: &http::Error) -> Response {
    match err {
        http::Error::BodyTooLarge { .. } => too_large(),
        err => error(400, &format!("body could not be read: {err}"), Some("body")),
    }
}

/// The answer when the client stopped sending before the whole body arrived.
pub fn body_unreadable() -> Response {
    error(400, "body could not be read: unexpected EOF", Some("body"))
}

/// The answer to a request that could not be parsed.
pub fn bad_request(err: &http::Error) -> Response {
    match err {
        http::Error::BodyTooLarge { .. } => too_large(),
        err => error(err.status(), &err.to_string(), None),
    }
}

/// Validates a vote and gives it its id: the client's Idempotency-Key, or a UUIDv7 made from
/// `now_ms` and `random`. `now_ms` is also its accept time.
/// With a `ballot`, a well-formed vote must also be on it (format rules first, then the ballot).
pub fn vote(
    head: &Head,
    body: &[u8],
    now_ms: i64,
    random: [u8; uuid::RANDOM_BYTES],
    ballot: Option<&vote::Ballot>,
) -> Result<VoteRecord, Response> {
    let key = idempotency_key(&head.idempotency_keys).map_err(|reason| {
        error(400, &format!("{IDEMPOTENCY_KEY}: {reason}"), Some(IDEMPOTENCY_KEY))
    })?;
    let field_error = |err: vote::FieldError| error(400, &err.to_string(), Some(&err.field));
    let vote = vote::parse(body, utc_year(now_ms)).map_err(field_error)?;
    if let Some(ballot) = ballot {
        ballot.check(&vote).map_err(field_error)?;
    }
    let vote_id = key.unwrap_or_else(|| uuid::v7(now_ms as u64, random).to_string());
    Ok(VoteRecord { vote, vote_id, accepted_at_unix_ms: now_ms })
}

/// 202 with the vote id: the vote is in Kafka.
pub fn accepted(vote_id: &str) -> Response {
    json(202, format!("{{\"id\":{}}}", quote(vote_id)))
}

/// The answer when Kafka did not take the vote: 503 with Retry-After for what may pass. The body
/// says nothing of the error itself (broker addresses, codes): the caller logs that.
pub fn not_written(err: &kafka::Error) -> Response {
    if err.is_transient() {
        let message =
            format!("vote queue unavailable; retry later with the same {IDEMPOTENCY_KEY}");
        error(503, &message, None).header("Retry-After", RETRY_AFTER)
    } else {
        internal_error()
    }
}

/// The answer to a connection beyond the producer's limit, given at once before closing it.
pub fn too_many_connections() -> Response {
    error(503, "too many connections; retry later", None).header("Retry-After", RETRY_AFTER)
}

/// 429 for a client out of tokens, `retry_after` seconds before it has one again.
pub fn too_many_requests(retry_after: u64) -> Response {
    let message = format!("too many requests from this client; retry after {retry_after} s");
    error(429, &message, None).header("Retry-After", retry_after.to_string())
}

/// 500 with no detail: what went wrong goes to the log, not to the client.
pub fn internal_error() -> Response {
    error(500, "internal error", None)
}

pub fn healthz() -> Response {
    json(200, r#"{"status":"ok"}"#.to_owned())
}

/// 200 when the producer can reach Kafka, else 503 (the reason, with broker addresses, is the
/// producer's log's business, not the client's).
pub fn readyz(ready: bool) -> Response {
    if ready {
        json(200, r#"{"status":"ready"}"#.to_owned())
    } else {
        error(503, "not ready: the vote queue is unreachable", None)
            .header("Retry-After", RETRY_AFTER)
    }
}

pub fn metrics(text: String) -> Response {
    Response::new(200, "text/plain; version=0.0.4; charset=utf-8", text.into_bytes())
}

/// An error body: `{"error": message, "field": field}`.
pub fn error(status: u16, message: &str, field: Option<&str>) -> Response {
    let body = match field {
        Some(field) => format!("{{\"error\":{},\"field\":{}}}", quote(message), quote(field)),
        None => format!("{{\"error\":{}}}", quote(message)),
    };
    json(status, body)
}

fn json(status: u16, mut body: String) -> Response {
    body.push('\n');
    Response::new(status, "application/json", body.into_bytes())
        .header("X-Content-Type-Options", "nosniff")
}

/// application/json, with at most a charset parameter of utf-8 (Go's mime.ParseMediaType rules,
/// as far as they matter here).
pub fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media_type = parts.next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return false;
    }
    // One trailing semicolon is allowed (Go's mime.ParseMediaType ignores it); any other
    // parameter must be charset=utf-8.
    let params: Vec<&str> = parts.collect();
    let params = match params.split_last() {
        Some((last, rest)) if last.trim().is_empty() => rest,
        _ => &params[..],
    };
    params.iter().all(|param| {
        let Some((name, value)) = param.split_once('=') else { return false };
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
    })
}

/// The client's vote id: none, or exactly one of 1..=128 printable ASCII characters (space
/// through tilde), as go/internal/vote.CheckID and go/internal/front say.
fn idempotency_key(values: &[Vec<u8>]) -> Result<Option<String>, String> {
    let key = match values {
        [] => return Ok(None),
        [key] => key,
        _ => return Err("must be given once".to_owned()),
    };
    if key.is_empty() || key.len() > ID_MAX_CHARS {
        return Err(format!("must be 1 to {ID_MAX_CHARS} characters"));
    }
    if let Some(i) = key.iter().position(|b| !(b' '..=b'~').contains(b)) {
        return Err(format!("must be printable ASCII (byte {i} is 0x{:02x})", key[i]));
    }
    Ok(Some(String::from_utf8(key.clone()).expect("ASCII")))
}

/// The UTC calendar year of a Unix time in milliseconds (the vote rules' "next year").
pub fn utc_year(unix_ms: i64) -> i32 {
    // Howard Hinnant's civil_from_days.
    let days = unix_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{self, Value};

    /// The head of `text`, with a Host header after its request line (HTTP/1.1 requires one).
    fn head(text: &str) -> Head {
        let text = text.replacen("\r\n", "\r\nHost: h\r\n", 1);
        http::parse_head(text.as_bytes()).unwrap().unwrap()
    }

    fn body_of(response: &Response) -> (String, Option<String>) {
        let value = json::parse(&response.body).unwrap();
        let field = |name| value.get(name).and_then(Value::as_string);
        (field("error").unwrap_or_default(), field("field"))
    }

    fn status(result: Result<Route, Response>) -> u16 {
        result.map(|_| 0).unwrap_or_else(|r| r.status)
    }

    const JSON: &str = "Content-Type: application/json\r\n";

    #[test]
    fn routes_like_the_go_front() {
        assert_eq!(route(&head(&format!("POST /votes HTTP/1.1\r\n{JSON}\r\n"))), Ok(Route::Vote));
        assert_eq!(route(&head("GET /healthz HTTP/1.1\r\n\r\n")), Ok(Route::Healthz));
        assert_eq!(route(&head("HEAD /metrics?x HTTP/1.1\r\n\r\n")), Ok(Route::Metrics));
        assert_eq!(status(route(&head("GET /nope HTTP/1.1\r\n\r\n"))), 404);
        assert_eq!(status(route(&head("GET /votes/ HTTP/1.1\r\n\r\n"))), 404);
        let not_allowed = route(&head("GET /votes HTTP/1.1\r\n\r\n")).unwrap_err();
        assert_eq!(not_allowed.status, 405);
        assert!(not_allowed.headers.contains(&("Allow", "POST".to_owned())));
        assert_eq!(body_of(&not_allowed).0, "method GET not allowed; allowed: POST");
        let post_health = route(&head("POST /readyz HTTP/1.1\r\n\r\n")).unwrap_err();
        assert!(post_health.headers.contains(&("Allow", "GET, HEAD".to_owned())));
    }

    #[test]
    fn checks_content_type_before_size() {
        let big = "Content-Length: 4097\r\n";
        let r =
            route(&head(&format!("POST /votes HTTP/1.1\r\nContent-Type: text/plain\r\n{big}\r\n")));
        assert_eq!(status(r), 415);
        let r = route(&head(&format!("POST /votes HTTP/1.1\r\n{JSON}{big}\r\n"))).unwrap_err();
        assert_eq!((r.status, body_of(&r).1.as_deref()), (413, Some("body")));
        let exact = "Content-Length: 4096\r\n";
        assert_eq!(
            route(&head(&format!("POST /votes HTTP/1.1\r\n{JSON}{exact}\r\n"))),
            Ok(Route::Vote)
        );
        assert_eq!(status(route(&head("POST /votes HTTP/1.1\r\n\r\n"))), 415);
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/json; charset=latin1",
            "application/json; v=1",
            "application/jsonx",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    const VALID: &[u8] = br#"{"name":" Alux Nahual ","album":"Alux Nahual","year":1983,"rank":1}"#;
    const NOW: i64 = 1_795_460_000_123; // 2026-11-23T18:53:20.123Z

    #[test]
    fn makes_a_record_with_a_uuidv7() {
        let h = head(&format!("POST /votes HTTP/1.1\r\n{JSON}\r\n"));
        let record = vote(&h, VALID, NOW, [7; uuid::RANDOM_BYTES], None).unwrap();
        assert_eq!(record.vote.name, "Alux Nahual");
        assert_eq!(record.accepted_at_unix_ms, NOW);
        assert_eq!(record.vote_id, uuid::v7(NOW as u64, [7; 10]).to_string());
        assert_eq!(
            String::from_utf8(accepted(&record.vote_id).body).unwrap(),
            format!("{{\"id\":\"{}\"}}\n", record.vote_id)
        );
    }

    #[test]
    fn uses_a_valid_idempotency_key() {
        let key = "contract-1/key with spaces~";
        let h = head(&format!("POST /votes HTTP/1.1\r\n{JSON}Idempotency-Key: {key}\r\n\r\n"));
        assert_eq!(vote(&h, VALID, NOW, [0; 10], None).unwrap().vote_id, key);
        let long = "k".repeat(128);
        let h = head(&format!("POST /votes HTTP/1.1\r\n{JSON}Idempotency-Key: {long}\r\n\r\n"));
        assert_eq!(vote(&h, VALID, NOW, [0; 10], None).unwrap().vote_id, long);
    }

    #[test]
    fn refuses_bad_idempotency_keys() {
        let bad = [
            "Idempotency-Key: \r\n".to_owned(),
            format!("Idempotency-Key: {}\r\n", "k".repeat(129)),
            "Idempotency-Key: clave-\u{f1}\r\n".to_owned(),
            "Idempotency-Key: a\tb\r\n".to_owned(),
            "Idempotency-Key: a\r\nIdempotency-Key: b\r\n".to_owned(),
        ];
        for header in bad {
            let h = head(&format!("POST /votes HTTP/1.1\r\n{JSON}{header}\r\n"));
            let r = vote(&h, VALID, NOW, [0; 10], None).unwrap_err();
            let (message, field) = body_of(&r);
            assert_eq!((r.status, field.as_deref()), (400, Some(IDEMPOTENCY_KEY)), "{header:?}");
            assert!(message.starts_with("Idempotency-Key: "), "{message}");
        }
    }

    #[test]
    fn names_the_wrong_field() {
        let h = head(&format!("POST /votes HTTP/1.1\r\n{JSON}\r\n"));
        let r = vote(&h, br#"{"name":"a","album":"b","year":2028,"rank":1}"#, NOW, [0; 10], None)
            .unwrap_err();
        assert_eq!(
            body_of(&r),
            ("year: must be from 1900 to 2027".to_owned(), Some("year".to_owned()))
        );
        let r = vote(&h, b"[]", NOW, [0; 10], None).unwrap_err();
        assert_eq!(body_of(&r).1.as_deref(), Some("body"));
    }

    #[test]
    fn checks_the_ballot_after_the_format_rules() {
        let ballot = vote::Ballot::parse(
            br#"{"bands":[{"name":"Alux Nahual","albums":[{"album":"Conquista","year":1982}]}]}"#,
        )
        .unwrap();
        let h = head(&format!("POST /votes HTTP/1.1\r\n{JSON}\r\n"));
        let field =
            |body: &[u8]| body_of(&vote(&h, body, NOW, [0; 10], Some(&ballot)).unwrap_err()).1;
        assert_eq!(field(VALID).as_deref(), Some("album"));
        let off = br#"{"name":"Nobody","album":"Conquista","year":1982,"rank":0}"#;
        assert_eq!(field(off).as_deref(), Some("rank"));
        let on = br#"{"name":"Alux Nahual","album":"Conquista","year":1982,"rank":1}"#;
        assert!(vote(&h, on, NOW, [0; 10], Some(&ballot)).is_ok());
    }

    #[test]
    fn kafka_failures() {
        let r = not_written(&kafka::Error::TimedOut);
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("Retry-After", "1".to_owned())));
        assert_eq!(
            body_of(&r).0,
            "vote queue unavailable; retry later with the same Idempotency-Key"
        );
        let r = not_written(&kafka::Error::Rejected { code: 10 });
        assert_eq!((r.status, body_of(&r).0.as_str()), (500, "internal error"));
        assert_eq!(readyz(false).status, 503);
        assert_eq!(body_of(&readyz(false)).0, "not ready: the vote queue is unreachable");
        assert_eq!(readyz(true).status, 200);
    }

    #[test]
    fn utc_years() {
        assert_eq!(utc_year(0), 1970);
        assert_eq!(utc_year(NOW), 2026);
        assert_eq!(utc_year(1_798_761_599_999), 2026); // 2026-12-31T23:59:59.999Z
        assert_eq!(utc_year(1_798_761_600_000), 2027);
        assert_eq!(utc_year(951_782_400_000), 2000); // 2000-02-29
        assert_eq!(utc_year(-1), 1969);
    }
}
