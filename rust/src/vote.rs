//! The vote contract's validation rules, the same as the Go producer's (go/internal/vote).
//!
//! Both producers run the shared table in proto/vote_cases.json, so they accept exactly the same
//! votes and report the same field for every rejected body. Where Go's behaviour is an accident of
//! encoding/json (duplicate names, U+FFFD for bad UTF-8 in names), we copy it on purpose.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::json::{self, Value};

/// Limits of a valid vote; docs/api.md and proto/vote_cases.json state the same numbers.
pub const TEXT_MAX_CHARS: usize = 100;
pub const YEAR_MIN: i64 = 1900;
pub const RANK_MIN: i64 = 1;
pub const RANK_MAX: i64 = 10;

/// Fields in the order they are checked; the first failing one is reported.
pub const FIELDS: [&str; 4] = ["name", "album", "year", "rank"];

/// A validated vote, before the producer gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub name: String,
    pub album: String,
    pub year: i32,
    pub rank: i32,
}

/// Which field of a request body is wrong and why. `field` is "body" when the body as a whole is
/// not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: Reason,
}

/// Why a field is wrong; displayed in the Go producer's words, since clients see both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NotAnObject,
    UnknownField,
    Required,
    InvalidUtf8,
    NotAString,
    Empty,
    TooLong,
    NotAnInteger,
    OutOfRange { min: i64, max: i64 },
    NotABandOnTheBallot,
    NotAnAlbumOfTheBand,
    NotTheAlbumsYear { year: i32 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotAnObject => {
                f.write_str("must be a JSON object with name, album, year and rank")
            }
            Reason::UnknownField => {
                f.write_str("is not a vote field (expected name, album, year, rank)")
            }
            Reason::Required => f.write_str("is required"),
            Reason::InvalidUtf8 => f.write_str("must be valid UTF-8"),
            Reason::NotAString => f.write_str("must be a string"),
            Reason::Empty => f.write_str("must not be empty"),
            Reason::TooLong => write!(f, "must be at most {TEXT_MAX_CHARS} characters"),
            Reason::NotAnInteger => f.write_str("must be an integer"),
            Reason::OutOfRange { min, max } => write!(f, "must be from {min} to {max}"),
            Reason::NotABandOnTheBallot => f.write_str("is not a band on the ballot"),
            Reason::NotAnAlbumOfTheBand => {
                f.write_str("is not an album of this band on the ballot")
            }
            Reason::NotTheAlbumsYear { year } => {
                write!(f, "must be {year}, the album's year on the ballot")
            }
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    fn new(field: &str, reason: Reason) -> Self {
        FieldError { field: field.to_owned(), reason }
    }
}

/// Validates a raw request body as a vote; `clock_year` (the current UTC year) decides the latest
/// allowed year, which is the next one so that pre-release albums can be voted on.
pub fn parse(body: &[u8], clock_year: i32) -> Result<Vote, FieldError> {
    let fields = object_fields(body).ok_or_else(|| FieldError::new("body", Reason::NotAnObject))?;
    // A BTreeMap orders names by their bytes, as Go's sort of the unknown names does.
    if let Some(unknown) = fields.keys().find(|name| !FIELDS.contains(&name.as_str())) {
        return Err(FieldError::new(unknown, Reason::UnknownField));
    }
    Ok(Vote {
        name: text(&fields, "name")?,
        album: text(&fields, "album")?,
        year: integer(&fields, "year", YEAR_MIN, i64::from(clock_year) + 1)?,
        rank: integer(&fields, "rank", RANK_MIN, RANK_MAX)?,
    })
}

/// The ballot setting (TALLY_BALLOT) that turns the ballot off, as in Go's `vote.BallotOff`.
pub const BALLOT_OFF: &str = "off";

/// The contest's ballot (proto/ballot.json): bands, their albums, each album's year. A vote that
/// passed [`parse`] passes the ballot when its band is on it, its album is one of that band's and
/// its year is that album's; Go's `vote.Ballot` decides the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot {
    years: HashMap<String, HashMap<String, i32>>,
}

/// A ballot file's first broken rule: `path` names the value that breaks it, "" for the file as a
/// whole, else members and indexes from the top (`bands[1].albums[0].year`), as the shared table
/// proto/ballot_cases.json states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BallotError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for BallotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for BallotError {}

fn ballot_error(path: &str, reason: impl Into<String>) -> BallotError {
    BallotError { path: path.to_owned(), reason: reason.into() }
}

/// The largest year a ballot may give: the vote's year is an int32 (proto/vote/v1/vote.proto).
const BALLOT_YEAR_MAX: i64 = i32::MAX as i64;

impl Ballot {
    /// Reads a ballot in proto/ballot.json's shape by the rules of proto/ballot_cases.json, which
    /// Go's `vote.ParseBallot` and the API run too: only the known members, at least one band,
    /// every band with albums, every name a text a vote could carry (trimmed, 1 to 100
    /// characters) and listed once, every year a whole number from 1900 to the largest int32.
    pub fn parse(bytes: &[u8]) -> Result<Ballot, BallotError> {
        let file =
            json::parse(bytes).map_err(|err| ballot_error("", format!("is not JSON: {err}")))?;
        ballot_object(file, "", &["description", "bands"])?;
        if let Some(description) = file.get("description") {
            ballot_string(description, "description")?;
        }
        let mut years = HashMap::new();
        for (i, band) in ballot_array(file.get("bands"), "bands")?.enumerate() {
            let path = format!("bands[{i}]");
            ballot_object(band, &path, &["name", "albums"])?;
            let name_path = format!("{path}.name");
            let name = ballot_text(band.get("name"), &name_path)?;
            if years.contains_key(&name) {
                return Err(ballot_error(&name_path, format!("band {name:?} is listed twice")));
            }
            let albums = ballot_albums(band.get("albums"), &format!("{path}.albums"))?;
            years.insert(name, albums);
        }
        Ok(Ballot { years })
    }

    /// The first of name, album, year that is off the ballot, if any.
    pub fn check(&self, vote: &Vote) -> Result<(), FieldError> {
        let albums = self
            .years
            .get(&vote.name)
            .ok_or_else(|| FieldError::new("name", Reason::NotABandOnTheBallot))?;
        let year = *albums
            .get(&vote.album)
            .ok_or_else(|| FieldError::new("album", Reason::NotAnAlbumOfTheBand))?;
        if vote.year != year {
            return Err(FieldError::new("year", Reason::NotTheAlbumsYear { year }));
        }
        Ok(())
    }
}

/// A band's albums: title → year.
fn ballot_albums(
    value: Option<Value<'_>>,
    path: &str,
) -> Result<HashMap<String, i32>, BallotError> {
    let mut years = HashMap::new();
    for (i, album) in ballot_array(value, path)?.enumerate() {
        let path = format!("{path}[{i}]");
        ballot_object(album, &path, &["album", "year"])?;
        let title_path = format!("{path}.album");
        let title = ballot_text(album.get("album"), &title_path)?;
        if years.contains_key(&title) {
            let reason = format!("album {title:?} is listed twice under this band");
            return Err(ballot_error(&title_path, reason));
        }
        let year = ballot_year(album.get("year"), &format!("{path}.year"))?;
        years.insert(title, year);
    }
    Ok(years)
}

/// A year: a JSON number (1990.0 is 1990, as for Go and JavaScript, which read numbers as f64)
/// that is a whole number from 1900 to the largest int32.
fn ballot_year(value: Option<Value<'_>>, path: &str) -> Result<i32, BallotError> {
    let number = value.and_then(Value::as_number).and_then(|n| n.parse::<f64>().ok());
    match number {
        Some(n) if n.fract() == 0.0 && (YEAR_MIN as f64..=BALLOT_YEAR_MAX as f64).contains(&n) => {
            Ok(n as i32)
        }
        _ => Err(ballot_error(
            path,
            format!("must be a whole number from {YEAR_MIN} to {BALLOT_YEAR_MAX}"),
        )),
    }
}

/// An object whose members are all among `known`; an unknown one is named by its path, the
/// first in byte order.
fn ballot_object(value: Value<'_>, path: &str, known: &[&str]) -> Result<(), BallotError> {
    let members = value.members().ok_or_else(|| ballot_error(path, "must be an object"))?;
    let unknown =
        members.map(|(name, _)| name).filter(|name| !known.contains(&name.as_str())).min();
    match unknown {
        Some(name) if path.is_empty() => Err(ballot_error(&name, "is not a known field")),
        Some(name) => Err(ballot_error(&format!("{path}.{name}"), "is not a known field")),
        None => Ok(()),
    }
}

/// A non-empty array's elements.
fn ballot_array<'a>(
    value: Option<Value<'a>>,
    path: &str,
) -> Result<impl Iterator<Item = Value<'a>>, BallotError> {
    value
        .and_then(Value::elements)
        .filter(|elements| elements.clone().next().is_some())
        .ok_or_else(|| ballot_error(path, "must be a non-empty array"))
}

fn ballot_string(value: Value<'_>, path: &str) -> Result<String, BallotError> {
    value.as_string().ok_or_else(|| ballot_error(path, "must be a string"))
}

/// A ballot's name must be what a vote's text becomes after the format rules.
fn ballot_text(value: Option<Value<'_>>, path: &str) -> Result<String, BallotError> {
    let text = match value {
        Some(value) => ballot_string(value, path)?,
        None => return Err(ballot_error(path, "must be a string")),
    };
    match text.chars().count() {
        0 => Err(ballot_error(path, "must not be empty")),
        _ if text.trim() != text => Err(ballot_error(path, "has leading or trailing space")),
        n if n > TEXT_MAX_CHARS => {
            Err(ballot_error(path, format!("must be at most {TEXT_MAX_CHARS} characters")))
        }
        _ => Ok(text),
    }
}

type Fields<'a> = BTreeMap<String, Value<'a>>;

/// The body's members by name. A repeated name keeps its last value, as Go's map decoding does.
fn object_fields(body: &[u8]) -> Option<Fields<'_>> {
    Some(json::parse(body).ok()?.members()?.collect())
}

/// A field's value, with null counting as missing.
fn present<'a>(fields: &Fields<'a>, name: &str) -> Result<Value<'a>, FieldError> {
    match fields.get(name) {
        Some(value) if !value.is_null() => Ok(*value),
        _ => Err(FieldError::new(name, Reason::Required)),
    }
}

fn text(fields: &Fields<'_>, name: &str) -> Result<String, FieldError> {
    let value = present(fields, name)?;
    // Decoding would quietly turn invalid UTF-8 into U+FFFD; check the raw bytes first.
    if std::str::from_utf8(value.raw()).is_err() {
        return Err(FieldError::new(name, Reason::InvalidUtf8));
    }
    let decoded = value.as_string().ok_or_else(|| FieldError::new(name, Reason::NotAString))?;
    // str::trim and Go's strings.TrimSpace both strip Unicode White_Space.
    let trimmed = decoded.trim();
    match trimmed.chars().count() {
        0 => Err(FieldError::new(name, Reason::Empty)),
        n if n > TEXT_MAX_CHARS => Err(FieldError::new(name, Reason::TooLong)),
        _ => Ok(trimmed.to_owned()),
    }
}

/// A JSON integer literal, or a string of digits (as Mockaroo exports them), within `min..=max`.
fn integer(fields: &Fields<'_>, name: &str, min: i64, max: i64) -> Result<i32, FieldError> {
    let value = present(fields, name)?;
    let not_an_integer = || FieldError::new(name, Reason::NotAnInteger);
    let digits = match value.as_string() {
        Some(text) => text,
        None => value.as_number().ok_or_else(not_an_integer)?.to_owned(),
    };
    if !is_integer_text(&digits) {
        return Err(not_an_integer());
    }
    // Too big for i64 is out of range, not malformed: Go reports it the same way.
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| FieldError::new(name, Reason::OutOfRange { min, max }))
}

/// `^-?[0-9]+$`: no sign but minus, no spaces, no fraction or exponent.
fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: &str) -> String {
        parse(body.as_bytes(), 2026).unwrap_err().to_string()
    }

    /// Every case of the shared table of ballot files, which Go and the API run too: the same
    /// verdict and, for a refused file, the same path. Bazel gives the file as compile_data.
    #[test]
    fn ballot_runs_every_shared_case() {
        let table = json::parse(include_bytes!("../../proto/ballot_cases.json")).unwrap();
        let cases = table.get("cases").and_then(Value::elements).expect("a cases array");
        let mut failures = Vec::new();
        let mut total = 0;
        for case in cases {
            total += 1;
            let description = case.get("description").and_then(Value::as_string).unwrap();
            let text = match case.get("text") {
                Some(text) => text.as_string().unwrap().into_bytes(),
                None => case.get("ballot").expect("ballot or text").raw().to_vec(),
            };
            let want = match case.get("valid").and_then(Value::as_bool).expect("valid") {
                true => None,
                false => Some(case.get("path").and_then(Value::as_string).expect("path")),
            };
            let got = Ballot::parse(&text).err();
            if got.as_ref().map(|err| &err.path) != want.as_ref() {
                failures.push(format!("{description}: got {got:?}, want path {want:?}"));
            }
        }
        assert!(total > 0, "no cases");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        Ballot::parse(include_bytes!("../../proto/ballot.json")).expect("proto/ballot.json");
    }

    #[test]
    fn ballot_checks_votes() {
        let album = r#"{"album":"b","year":2000}"#;
        let ballot =
            Ballot::parse(format!(r#"{{"bands":[{{"name":"a","albums":[{album}]}}]}}"#).as_bytes())
                .unwrap();
        let vote = |name: &str, album: &str, year| Vote {
            name: name.into(),
            album: album.into(),
            year,
            rank: 1,
        };
        assert_eq!(ballot.check(&vote("a", "b", 2000)), Ok(()));
        let field = |v: Vote| ballot.check(&v).unwrap_err().to_string();
        assert_eq!(field(vote("A", "b", 2000)), "name: is not a band on the ballot");
        assert_eq!(
            field(vote("a", "c", 2000)),
            "album: is not an album of this band on the ballot"
        );
        assert_eq!(
            field(vote("a", "b", 2001)),
            "year: must be 2000, the album's year on the ballot"
        );
    }

    #[test]
    fn latest_year_follows_the_clock() {
        let body = br#"{"name":"a","album":"b","year":2031,"rank":1}"#;
        assert!(parse(body, 2030).is_ok());
        assert_eq!(parse(body, 2029).unwrap_err().to_string(), "year: must be from 1900 to 2030");
    }

    #[test]
    fn reasons_read_like_go() {
        let cases = [
            ("[]", "body: must be a JSON object with name, album, year and rank"),
            (r#"{"b":1,"a":1}"#, "a: is not a vote field (expected name, album, year, rank)"),
            ("{}", "name: is required"),
            (r#"{"name":["x"]}"#, "name: must be a string"),
            (r#"{"name":"\t"}"#, "name: must not be empty"),
            (r#"{"name":"a","album":"b","year":"1e3"}"#, "year: must be an integer"),
            (r#"{"name":"a","album":"b","year":2000,"rank":-1}"#, "rank: must be from 1 to 10"),
        ];
        for (body, want) in cases {
            assert_eq!(error(body), want, "{body}");
        }
        let long = format!(r#"{{"name":"{}"}}"#, "é".repeat(101));
        assert_eq!(error(&long), "name: must be at most 100 characters");
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_field() {
        let err = parse(b"{\"name\":\"a\",\"album\":[\"\xc3\"]}", 2026).unwrap_err();
        assert_eq!(err.to_string(), "album: must be valid UTF-8");
        // In a name it cannot be reported as UTF-8; Go shows the name with U+FFFD per bad byte.
        let err = parse(b"{\"n\xc3\xa9\xff\":1,\"zz\":2}", 2026).unwrap_err();
        assert_eq!(err.field, "n\u{e9}\u{fffd}");
    }

    #[test]
    fn decodes_names_and_keeps_the_last_duplicate() {
        let body = br#"{"n\u0061me":"a","name":"b","album":"c","year":2000,"rank":"03","rank":4}"#;
        let vote = parse(body, 2026).unwrap();
        assert_eq!((vote.name.as_str(), vote.rank), ("b", 4));
    }

    #[test]
    fn trims_unicode_whitespace_like_go() {
        let body = concat!(
            "{\"name\":\"\u{a0}\u{85}\u{3000}a b\u{2029}\",",
            r#""album":"\ud83c x","year":2000,"rank":1}"#,
        );
        let vote = parse(body.as_bytes(), 2026).unwrap();
        assert_eq!(vote.name, "a b");
        assert_eq!(vote.album, "\u{fffd} x");
    }
}
