//! A small strict JSON reader: just enough to take a vote apart exactly as Go's encoding/json does.
//!
//! [`parse`] first checks the whole input, as Go's decoder does before decoding anything. The check
//! keeps open arrays and objects on a heap stack rather than recursing, and stops at Go's nesting
//! limit, so a hostile body can neither overflow the (small, in Wasm) stack nor be judged
//! differently from the Go producer. After that, a [`Value`] is only a view of bytes known to be
//! valid JSON: reading it can fail on asking for the wrong type, never on syntax.
//!
//! It reads bytes, not `&str`: JSON strings may hold any byte, and a vote must say which field
//! holds invalid UTF-8, so every value keeps its raw bytes ([`Value::raw`]).

use std::char::REPLACEMENT_CHARACTER;
use std::fmt;

/// Go's `maxNestingDepth`: Go rejects deeper input, so we do too.
const MAX_DEPTH: usize = 10_000;

/// Why input is not one JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input ended inside a value, or held no value at all.
    UnexpectedEnd,
    /// A byte that cannot appear where it does.
    UnexpectedByte { byte: u8, offset: usize },
    /// Arrays and objects nested deeper than Go allows.
    TooDeep { offset: usize },
    /// Something other than whitespace after the value.
    TrailingData { offset: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnexpectedEnd => write!(f, "unexpected end of JSON input"),
            Error::UnexpectedByte { byte, offset } => {
                write!(f, "unexpected byte {:?} at offset {offset}", char::from(*byte))
            }
            Error::TooDeep { offset } => {
                write!(f, "nested deeper than {MAX_DEPTH} at offset {offset}")
            }
            Error::TrailingData { offset } => {
                write!(f, "data after the JSON value at offset {offset}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Checks that `input` is exactly one JSON value, optionally surrounded by whitespace.
pub fn parse(input: &[u8]) -> Result<Value<'_>, Error> {
    let mut checker = Checker { input, pos: 0 };
    checker.skip_whitespace();
    let start = checker.pos;
    checker.value()?;
    let raw = &input[start..checker.pos];
    checker.skip_whitespace();
    if checker.pos < input.len() {
        return Err(Error::TrailingData { offset: checker.pos });
    }
    Ok(Value { raw })
}

/// A checked JSON value: a view of its bytes in the input, without surrounding whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
}

impl<'a> Value<'a> {
    /// The value's bytes exactly as they appear in the input.
    pub fn raw(self) -> &'a [u8] {
        self.raw
    }

    pub fn is_null(self) -> bool {
        self.raw == b"null"
    }

    pub fn as_bool(self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    /// A number's literal text: callers decide what counts as an integer, so nothing is rounded.
    pub fn as_number(self) -> Option<&'a str> {
        match self.raw.first() {
            Some(b'-' | b'0'..=b'9') => std::str::from_utf8(self.raw).ok(),
            _ => None,
        }
    }

    /// A string's text, decoded as Go decodes it: invalid UTF-8 and unpaired surrogates become
    /// U+FFFD. Check [`Value::raw`] first where invalid UTF-8 must be an error instead.
    pub fn as_string(self) -> Option<String> {
        let inner = self.raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        Some(decode_string(inner))
    }

    /// An object's members in input order, duplicates included.
    pub fn members(self) -> Option<Members<'a>> {
        let inside = self.raw.strip_prefix(b"{")?;
        Some(Members(Items { rest: inside }))
    }

    /// An array's elements in input order.
    pub fn elements(self) -> Option<Elements<'a>> {
        let inside = self.raw.strip_prefix(b"[")?;
        Some(Elements(Items { rest: inside }))
    }

    /// An object's member by name; the last one wins when a name repeats, as in Go.
    pub fn get(self, name: &str) -> Option<Value<'a>> {
        self.members()?.filter(|(key, _)| key == name).map(|(_, value)| value).last()
    }
}

/// Iterator over an object's `(name, value)` pairs; see [`Value::members`].
#[derive(Debug, Clone)]
pub struct Members<'a>(Items<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = (String, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.0.next_value()?.as_string()?;
        self.0.rest = trim_start(self.0.rest).strip_prefix(b":")?;
        Some((name, self.0.next_value()?))
    }
}

/// Iterator over an array's values; see [`Value::elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a>(Items<'a>);

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_value()
    }
}

/// The unread inside of a checked array or object.
#[derive(Debug, Clone)]
struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Items<'a> {
    /// The next value, and past the comma after it; `None` at the closing bracket.
    fn next_value(&mut self) -> Option<Value<'a>> {
        let rest = trim_start(self.rest);
        if matches!(rest.first(), None | Some(b'}' | b']')) {
            self.rest = &[];
            return None;
        }
        let (raw, after) = rest.split_at(value_end(rest));
        let after = trim_start(after);
        self.rest = after.strip_prefix(b",").unwrap_or(after);
        Some(Value { raw })
    }
}

/// Where the checked value at the start of `bytes` ends. Only brackets outside strings matter,
/// so this needs no stack however deep the value is.
fn value_end(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some(&byte) = bytes.get(pos) {
        match byte {
            b'"' => pos = string_end(bytes, pos),
            b'{' | b'[' => {
                depth += 1;
                pos += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                pos += 1;
            }
            // A number or literal at the top: it runs up to the first delimiter.
            _ if depth == 0 => {
                pos += bytes[pos..].iter().take_while(|&&b| is_scalar_byte(b)).count();
            }
            _ => pos += 1,
        }
        if depth == 0 {
            break;
        }
    }
    pos
}

/// Where the checked string whose opening quote is at `start` ends (just past its closing quote).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut pos = start + 1;
    while let Some(&byte) = bytes.get(pos) {
        pos += 1;
        match byte {
            b'"' => return pos,
            b'\\' => pos += 1,
            _ => {}
        }
    }
    bytes.len()
}

fn is_scalar_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.')
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().take_while(|&&b| is_whitespace(b)).count();
    &bytes[start..]
}

/// Decodes the inside of a checked string the way Go's encoding/json does.
fn decode_string(mut raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    while let Some(at) = raw.iter().position(|&b| b == b'\\') {
        push_lossy(&mut out, &raw[..at]);
        let (c, len) = unescape(&raw[at..]);
        out.push(c);
        raw = &raw[at + len..];
    }
    push_lossy(&mut out, raw);
    out
}

/// One U+FFFD per invalid byte, as Go writes them; `String::from_utf8_lossy` writes one per
/// invalid sequence, which would make names and lengths differ from the Go producer's.
fn push_lossy(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|_| REPLACEMENT_CHARACTER));
    }
}

/// The character a checked escape (starting with its backslash) stands for, and its length.
fn unescape(escape: &[u8]) -> (char, usize) {
    let c = match escape.get(1) {
        Some(b'u') => return unicode_escape(escape),
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(&other) => char::from(other), // \" \\ \/
        None => REPLACEMENT_CHARACTER,
    };
    (c, 2)
}

/// `\uXXXX`, or a `\uXXXX\uXXXX` surrogate pair. Like Go, a surrogate that is not the high half of
/// a pair directly followed by its low half becomes U+FFFD, and whatever followed is read afresh.
fn unicode_escape(escape: &[u8]) -> (char, usize) {
    let Some(unit) = escape.get(2..6).and_then(hex4) else {
        return (REPLACEMENT_CHARACTER, 2);
    };
    if let Some(c) = char::from_u32(u32::from(unit)) {
        return (c, 6);
    }
    let low = match escape.get(6..8) {
        Some(b"\\u") => escape.get(8..12).and_then(hex4),
        _ => None,
    };
    match low.map(|low| char::decode_utf16([unit, low]).next()) {
        Some(Some(Ok(c))) => (c, 12),
        _ => (REPLACEMENT_CHARACTER, 6),
    }
}

fn hex4(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |acc, &d| {
        let digit = char::from(d).to_digit(16)?;
        Some(acc << 4 | digit as u16)
    })
}

/// The validating pass over the whole input.
struct Checker<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Checker<'_> {
    /// Checks one value and everything inside it. Each open container is remembered by its
    /// closing byte on a heap stack, so deep input costs memory, not native stack.
    fn value(&mut self) -> Result<(), Error> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            // A value starts here.
            match self.peek()? {
                opening @ (b'{' | b'[') => {
                    if open.len() == MAX_DEPTH {
                        return Err(Error::TooDeep { offset: self.pos });
                    }
                    let closing = if opening == b'{' { b'}' } else { b']' };
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek()? == closing {
                        self.pos += 1; // Empty: already a whole value.
                    } else {
                        open.push(closing);
                        if closing == b'}' {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                b'"' => self.string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                byte => return Err(self.unexpected(byte)),
            }
            // A value ended: close every container it completes, until one needs another item.
            loop {
                let Some(&closing) = open.last() else {
                    return Ok(());
                };
                self.skip_whitespace();
                match self.next()? {
                    b',' => {
                        self.skip_whitespace();
                        if closing == b'}' {
                            self.member_name()?;
                        }
                        break;
                    }
                    byte if byte == closing => {
                        open.pop();
                    }
                    byte => return Err(self.unexpected_previous(byte)),
                }
            }
        }
    }

    /// A member's name and its colon, leaving the checker where the member's value starts.
    fn member_name(&mut self) -> Result<(), Error> {
        match self.peek()? {
            b'"' => self.string()?,
            byte => return Err(self.unexpected(byte)),
        }
        self.skip_whitespace();
        self.expect(b':')?;
        self.skip_whitespace();
        Ok(())
    }

    /// Any byte but a control character may appear unescaped: UTF-8 validity is left to callers.
    fn string(&mut self) -> Result<(), Error> {
        self.expect(b'"')?;
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let digit = self.next()?;
                            if !digit.is_ascii_hexdigit() {
                                return Err(self.unexpected_previous(digit));
                            }
                        }
                    }
                    byte => return Err(self.unexpected_previous(byte)),
                },
                byte if byte < 0x20 => return Err(self.unexpected_previous(byte)),
                _ => {}
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), Error> {
        self.eat(b'-');
        if !self.eat(b'0') {
            self.digits()?;
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.digits()?;
        }
        Ok(())
    }

    /// One or more digits.
    fn digits(&mut self) -> Result<(), Error> {
        let byte = self.next()?;
        if !byte.is_ascii_digit() {
            return Err(self.unexpected_previous(byte));
        }
        while self.peek().is_ok_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Error> {
        word.iter().try_for_each(|&b| self.expect(b))
    }

    fn expect(&mut self, wanted: u8) -> Result<(), Error> {
        match self.next()? {
            byte if byte == wanted => Ok(()),
            byte => Err(self.unexpected_previous(byte)),
        }
    }

    fn eat(&mut self, wanted: u8) -> bool {
        let found = self.input.get(self.pos) == Some(&wanted);
        self.pos += usize::from(found);
        found
    }

    fn peek(&self) -> Result<u8, Error> {
        self.input.get(self.pos).copied().ok_or(Error::UnexpectedEnd)
    }

    fn next(&mut self) -> Result<u8, Error> {
        let byte = self.peek()?;
        self.pos += 1;
        Ok(byte)
    }

    fn skip_whitespace(&mut self) {
        while self.input.get(self.pos).is_some_and(|&b| is_whitespace(b)) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, byte: u8) -> Error {
        Error::UnexpectedByte { byte, offset: self.pos }
    }

    /// For the byte just consumed by [`Checker::next`].
    fn unexpected_previous(&self, byte: u8) -> Error {
        Error::UnexpectedByte { byte, offset: self.pos - 1 }
    }
}

/// `text` as a JSON string literal, escaped as Go's encoding/json does (including its HTML-safe
/// `<`, `>`, `&` and U+2028/U+2029), so error bodies read alike from both producers.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(json: &str) -> String {
        parse(json.as_bytes()).unwrap().as_string().unwrap()
    }

    #[test]
    fn decodes_every_escape() {
        assert_eq!(string(r#""\"\\\/\b\f\n\r\t\u00e9""#), "\"\\/\u{8}\u{c}\n\r\té");
    }

    #[test]
    fn pairs_surrogates_like_go() {
        assert_eq!(string(r#""\ud83c\udfb8""#), "🎸");
        // Unpaired halves become U+FFFD; what follows a lone high half is read on its own.
        assert_eq!(string(r#""\ud83c""#), "\u{fffd}");
        assert_eq!(string(r#""\udfb8\ud83c""#), "\u{fffd}\u{fffd}");
        assert_eq!(string(r#""\ud83cx\u0041""#), "\u{fffd}xA");
        assert_eq!(string(r#""\ud83c\ud83c\udfb8""#), "\u{fffd}🎸");
    }

    #[test]
    fn replaces_each_invalid_byte_like_go() {
        // A truncated four-byte sequence: Go writes one U+FFFD per byte, not one per sequence.
        let value = parse(b"\"a\xf0\x9f\x8e\"").unwrap();
        assert_eq!(value.as_string().unwrap(), "a\u{fffd}\u{fffd}\u{fffd}");
        assert_eq!(value.raw(), b"\"a\xf0\x9f\x8e\"");
    }

    #[test]
    fn keeps_numbers_as_text() {
        assert_eq!(parse(b" -12.5e+3 ").unwrap().as_number(), Some("-12.5e+3"));
        let huge = "99999999999999999999999";
        assert_eq!(parse(huge.as_bytes()).unwrap().as_number(), Some(huge));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "NaN",
            "'a'",
            "[1,]",
            "[1 2]",
            "[]]",
            "{} {}",
            "{1:2}",
            "{\"a\"}",
            "{\"a\":1,}",
            "\"\t\"",
            "\"\\x\"",
            "\"\\u12g4\"",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn walks_nested_values() {
        let doc = parse(br#" {"a" : [1, {"b": "]}\""}, [], {}] , "c":null, "a": true} "#).unwrap();
        let members: Vec<_> = doc.members().unwrap().map(|(k, v)| (k, v.raw())).collect();
        assert_eq!(
            members,
            [
                ("a".to_owned(), &br#"[1, {"b": "]}\""}, [], {}]"#[..]),
                ("c".to_owned(), b"null"),
                ("a".to_owned(), b"true"),
            ]
        );
        assert_eq!(doc.get("a").and_then(Value::as_bool), Some(true));
        let first = doc.members().unwrap().next().unwrap().1;
        assert_eq!(first.elements().unwrap().count(), 4);
        assert_eq!(parse(b"[]").unwrap().elements().unwrap().count(), 0);
        assert_eq!(parse(b"{ }").unwrap().members().unwrap().count(), 0);
    }

    #[test]
    fn nests_as_deep_as_go_and_no_deeper() {
        let nested = |depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            parse(nested(MAX_DEPTH + 1).as_bytes()),
            Err(Error::TooDeep { offset: MAX_DEPTH })
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("plain ñ"), "\"plain ñ\"");
        let escaped = r#""a\"b\\c\nd\u0001\u003c\u0026\u003e\u2028""#;
        assert_eq!(quote("a\"b\\c\nd\u{1}<&>\u{2028}"), escaped);
        let quoted = quote("tab\there");
        assert_eq!(parse(quoted.as_bytes()).unwrap().as_string().unwrap(), "tab\there");
    }
}
