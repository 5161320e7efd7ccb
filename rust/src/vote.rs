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

impl Ballot {
    /// Reads a ballot in proto/ballot.json's shape, refusing what Go's `vote.ParseBallot`
    /// refuses: unknown members, no bands, a band without albums, a name a vote could never
    /// carry (untrimmed, empty, too long), a name listed twice, a year before 1900.
    pub fn parse(bytes: &[u8]) -> Result<Ballot, String> {
        let file = json::parse(bytes).map_err(|err| format!("decode: {err}"))?;
        let members = |value: Value<'_>, allowed: &[&str], what: &str| -> Result<(), String> {
            let mut names = value.members().ok_or(format!("{what} is not an object"))?;
            match names.find(|(name, _)| !allowed.contains(&name.as_str())) {
                Some((name, _)) => Err(format!("decode: unknown field {name:?} in {what}")),
                None => Ok(()),
            }
        };
        members(file, &["description", "bands"], "the ballot")?;
        let bands = file.get("bands").and_then(Value::elements).ok_or("no bands")?;
        let mut years = HashMap::new();
        for band in bands {
            members(band, &["name", "albums"], "a band")?;
            let name = band.get("name").and_then(Value::as_string).unwrap_or_default();
            ballot_text(&name).map_err(|why| format!("band {name:?}: {why}"))?;
            let mut albums = HashMap::new();
            for album in band.get("albums").and_then(Value::elements).into_iter().flatten() {
                members(album, &["album", "year"], "an album")?;
                let title = album.get("album").and_then(Value::as_string).unwrap_or_default();
                ballot_text(&title).map_err(|why| format!("album {title:?} of {name:?}: {why}"))?;
                let year: i32 = album
                    .get("year")
                    .and_then(Value::as_number)
                    .and_then(|n| n.parse().ok())
                    .ok_or(format!("album {title:?} of {name:?}: no integer year"))?;
                if i64::from(year) < YEAR_MIN {
                    return Err(format!("album {title:?} of {name:?}: year {year} is before 1900"));
                }
                if albums.insert(title.clone(), year).is_some() {
                    return Err(format!("album {title:?} of {name:?} is listed twice"));
                }
            }
            if albums.is_empty() {
                return Err(format!("band {name:?} has no albums"));
            }
            if years.insert(name.clone(), albums).is_some() {
                return Err(format!("band {name:?} is listed twice"));
            }
        }
        if years.is_empty() {
            return Err("no bands".to_owned());
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

/// A ballot's name must be what a vote's text becomes after the format rules.
fn ballot_text(text: &str) -> Result<(), String> {
    match text.chars().count() {
        0 => Err("is empty".to_owned()),
        n if n > TEXT_MAX_CHARS => Err(format!("is longer than {TEXT_MAX_CHARS} characters")),
        _ if text.trim() != text => Err("has leading or trailing space".to_owned()),
        _ => Ok(()),
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

    #[test]
    fn ballot_refuses_what_go_refuses() {
        let album = r#"{"album":"b","year":2000}"#;
        let bad = [
            r#"{"bands":[]}"#.to_owned(),
            format!(r#"{{"bands":[{{"name":"a","albums":[{album}]}}],"extra":1}}"#),
            format!(r#"{{"bands":[{{"name":" a","albums":[{album}]}}]}}"#),
            r#"{"bands":[{"name":"a","albums":[{"album":"","year":2000}]}]}"#.to_owned(),
            format!(
                r#"{{"bands":[{{"name":"a","albums":[{album}]}},{{"name":"a","albums":[{album}]}}]}}"#
            ),
            format!(r#"{{"bands":[{{"name":"a","albums":[{album},{album}]}}]}}"#),
            r#"{"bands":[{"name":"a","albums":[]}]}"#.to_owned(),
            r#"{"bands":[{"name":"a","albums":[{"album":"b","year":1899}]}]}"#.to_owned(),
        ];
        for text in bad {
            assert!(Ballot::parse(text.as_bytes()).is_err(), "{text}");
        }
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
