//! Runs every case of the shared validation table against `tally::vote::parse` and the ballot's
//! check, as the producer does (format rules, then the ballot), prints a summary, and exits
//! non-zero on any mismatch.
//!
//! Bazel builds it for wasm32-wasip1 and runs it under wasmedge (//rust:vote_cases_wasm_test), so
//! the rules are checked where the producer will run; the same file is the host test
//! (//rust:vote_test, or `cargo test`).
//!
//! Usage: vote_cases [CASES_JSON [BALLOT_JSON]], by default ../proto/vote_cases.json and
//! ../proto/ballot.json (from rust/).

use std::fmt;
use std::process::ExitCode;

use tally::json::{self, Value};
use tally::vote::{self, Ballot, Vote};

const DEFAULT_CASES: &str = "../proto/vote_cases.json";
const DEFAULT_BALLOT: &str = "../proto/ballot.json";

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| DEFAULT_CASES.to_owned());
    let ballot = std::env::args().nth(2).unwrap_or_else(|| DEFAULT_BALLOT.to_owned());
    match run_file(&path, &ballot) {
        Ok(report) => {
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("{path}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// What running the table found: how many cases agreed, and how the others did not.
struct Report {
    total: usize,
    failures: Vec<String>,
}

impl Report {
    fn passed(&self) -> bool {
        self.total > 0 && self.failures.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failures {
            writeln!(f, "FAIL {failure}")?;
        }
        let failed = self.failures.len();
        writeln!(f, "vote cases: {} passed, {failed} failed", self.total - failed)
    }
}

/// Reads and runs the table; `Err` means the table or the ballot could not be read.
fn run_file(path: &str, ballot: &str) -> Result<Report, String> {
    let ballot = std::fs::read(ballot).map_err(|err| format!("{ballot}: {err}"))?;
    let ballot = Ballot::parse(&ballot).map_err(|err| err.to_string())?;
    let table = std::fs::read(path).map_err(|err| err.to_string())?;
    let table = json::parse(&table).map_err(|err| err.to_string())?;
    let clock_year = table
        .get("clock_year")
        .and_then(Value::as_number)
        .and_then(|year| year.parse().ok())
        .ok_or("no integer clock_year")?;
    let cases = table.get("cases").and_then(Value::elements).ok_or("no cases array")?;

    let mut report = Report { total: 0, failures: Vec::new() };
    for (index, case) in cases.enumerate() {
        report.total += 1;
        let case = Case::read(case).ok_or_else(|| format!("case {index} is malformed"))?;
        if let Err(mismatch) = case.check(clock_year, &ballot) {
            report.failures.push(format!("{}: {mismatch}", case.description));
        }
    }
    Ok(report)
}

struct Case {
    description: String,
    body: Vec<u8>,
    /// False for cases of the format rules alone (made-up names).
    on_ballot: bool,
    want: Want,
}

enum Want {
    Valid(Vote),
    /// Only the field is shared between producers; reasons are each producer's own words.
    Invalid {
        field: String,
    },
}

impl Case {
    fn read(case: Value<'_>) -> Option<Case> {
        let string = |value: Value<'_>, name| value.get(name).and_then(Value::as_string);
        // Bodies that are not valid UTF-8 cannot be JSON strings, so they come in base64.
        let body = match string(case, "body_base64") {
            Some(encoded) => base64_decode(&encoded)?,
            None => string(case, "body")?.into_bytes(),
        };
        let want = if case.get("valid")?.as_bool()? {
            let vote = case.get("vote")?;
            let integer = |name| vote.get(name)?.as_number()?.parse().ok();
            Want::Valid(Vote {
                name: string(vote, "name")?,
                album: string(vote, "album")?,
                year: integer("year")?,
                rank: integer("rank")?,
            })
        } else {
            Want::Invalid { field: string(case, "field")? }
        };
        let on_ballot = case.get("ballot").map_or(Some(true), Value::as_bool)?;
        Some(Case { description: string(case, "description")?, body, on_ballot, want })
    }

    fn check(&self, clock_year: i32, ballot: &Ballot) -> Result<(), String> {
        let got = vote::parse(&self.body, clock_year).and_then(|vote| {
            if self.on_ballot {
                ballot.check(&vote).map(|()| vote)
            } else {
                Ok(vote)
            }
        });
        match (&self.want, got) {
            (Want::Valid(want), Ok(got)) if got == *want => Ok(()),
            (Want::Valid(want), got) => Err(format!("got {got:?}, want {want:?}")),
            (Want::Invalid { field }, Err(err)) if err.field == *field => Ok(()),
            (Want::Invalid { field }, got) => {
                Err(format!("got {got:?}, want an error on {field:?}"))
            }
        }
    }
}

/// Standard base64 with optional padding; the table is the only user, so no crate for it.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6 | u32::from(sextet)) & 0xFFFF;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bazel points VOTE_CASES and VOTE_BALLOT at the files in the runfiles; cargo runs tests
    /// from rust/.
    #[test]
    fn every_shared_case() {
        let path = std::env::var("VOTE_CASES").unwrap_or_else(|_| DEFAULT_CASES.to_owned());
        let ballot = std::env::var("VOTE_BALLOT").unwrap_or_else(|_| DEFAULT_BALLOT.to_owned());
        let report = run_file(&path, &ballot).unwrap_or_else(|err| panic!("{path}: {err}"));
        assert!(report.passed(), "\n{report}");
        println!("{report}");
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("eyJh/w==").unwrap(), b"{\"a\xff");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
    }
}
