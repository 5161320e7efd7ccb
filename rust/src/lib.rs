//! Tally's Wasm producer, in the making: for now, the vote contract's validation rules.
//!
//! The Go producer (go/internal/vote) and this crate both run the shared table in
//! proto/vote_cases.json, so a body is accepted, or rejected on the same field, whichever
//! producer receives it. The modules are pure (bytes in, values out) so they build unchanged for
//! the host and for wasm32-wasip1, and have no crate dependencies yet.
//!
//! - [`json`]: a strict JSON reader over raw bytes, faithful to Go's encoding/json.
//! - [`vote`]: [`vote::parse`] turns a request body into a [`vote::Vote`], or a
//!   [`vote::FieldError`] naming the first field that is wrong.

pub mod json;
pub mod vote;
