// Package vote holds the vote contract's validation rules: the one place the Go services decide
// whether a request body is a vote. The rules and their test table live in proto/vote_cases.json,
// which the Wasm producer's tests read too, so both producers accept exactly the same votes.
package vote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a valid vote; docs/api.md and proto/vote_cases.json state the same numbers.
const (
	TextMaxChars = 100
	YearMin      = 1900
	RankMin      = 1
	RankMax      = 10
)

// Fields in the order they are checked; the first failing one is reported.
var Fields = []string{"name", "album", "year", "rank"}

// Vote is a validated vote, before the producer gives it an id.
type Vote struct {
	Name  string `json:"name"`
	Album string `json:"album"`
	Year  int32  `json:"year"`
	Rank  int32  `json:"rank"`
}

// FieldError says which field of a request body is wrong and why. Field is "body" when the body
// as a whole is not a JSON object.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

var integerText = regexp.MustCompile(`^-?[0-9]+$`)

// Parse validates a raw request body as a vote, with now deciding the latest allowed year.
func Parse(body []byte, now time.Time) (Vote, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return Vote{}, &FieldError{Field: "body", Reason: "must be a JSON object with name, album, year and rank"}
	}
	unknown := make([]string, 0)
	for key := range fields {
		if !slices.Contains(Fields, key) {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return Vote{}, &FieldError{Field: unknown[0], Reason: "is not a vote field (expected name, album, year, rank)"}
	}

	var v Vote
	var err error
	if v.Name, err = text(fields, "name"); err != nil {
		return Vote{}, err
	}
	if v.Album, err = text(fields, "album"); err != nil {
		return Vote{}, err
	}
	if v.Year, err = integer(fields, "year", YearMin, YearMax(now)); err != nil {
		return Vote{}, err
	}
	if v.Rank, err = integer(fields, "rank", RankMin, RankMax); err != nil {
		return Vote{}, err
	}
	return v, nil
}

// YearMax is the latest allowed year: next year, by now's UTC calendar.
func YearMax(now time.Time) int64 { return int64(now.UTC().Year() + 1) }

// Check applies the same rules as Parse to a vote that arrived already typed (a gRPC request,
// say), in the same order, and returns it normalized (text trimmed) as Parse would.
func Check(v Vote, now time.Time) (Vote, error) {
	var err error
	if v.Name, err = checkText("name", v.Name); err != nil {
		return Vote{}, err
	}
	if v.Album, err = checkText("album", v.Album); err != nil {
		return Vote{}, err
	}
	if err := checkRange("year", int64(v.Year), YearMin, YearMax(now)); err != nil {
		return Vote{}, err
	}
	if err := checkRange("rank", int64(v.Rank), RankMin, RankMax); err != nil {
		return Vote{}, err
	}
	return v, nil
}

// IDMaxChars is the longest vote id a client may choose (the HTTP Idempotency-Key header).
const IDMaxChars = 128

// CheckID says why a client-chosen vote id is not acceptable, or returns nil: it must be 1 to
// IDMaxChars printable ASCII characters (space through tilde). Producer-made ids are UUIDv7s.
func CheckID(id string) error {
	if id == "" || len(id) > IDMaxChars {
		return fmt.Errorf("must be 1 to %d characters", IDMaxChars)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < ' ' || id[i] > '~' {
			return fmt.Errorf("must be printable ASCII (byte %d is 0x%02x)", i, id[i])
		}
	}
	return nil
}

func present(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	return raw, true
}

func text(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := present(fields, name)
	if !ok {
		return "", &FieldError{Field: name, Reason: "is required"}
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; check the raw bytes first.
	if !utf8.Valid(raw) {
		return "", &FieldError{Field: name, Reason: "must be valid UTF-8"}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &FieldError{Field: name, Reason: "must be a string"}
	}
	return checkText(name, s)
}

// checkText trims a text field and checks its length: the text rules, for JSON and proto alike.
func checkText(name, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &FieldError{Field: name, Reason: "must be valid UTF-8"}
	}
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", &FieldError{Field: name, Reason: "must not be empty"}
	case n > TextMaxChars:
		return "", &FieldError{Field: name, Reason: fmt.Sprintf("must be at most %d characters", TextMaxChars)}
	}
	return s, nil
}

// checkRange is the range rule of an integer field.
func checkRange(name string, n, lo, hi int64) error {
	if n < lo || n > hi {
		return rangeError(name, lo, hi)
	}
	return nil
}

func rangeError(name string, lo, hi int64) error {
	return &FieldError{Field: name, Reason: fmt.Sprintf("must be from %d to %d", lo, hi)}
}

func integer(fields map[string]json.RawMessage, name string, lo, hi int64) (int32, error) {
	raw, ok := present(fields, name)
	if !ok {
		return 0, &FieldError{Field: name, Reason: "is required"}
	}
	digits := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &digits); err != nil {
			return 0, &FieldError{Field: name, Reason: "must be an integer"}
		}
	}
	if !integerText.MatchString(digits) {
		return 0, &FieldError{Field: name, Reason: "must be an integer"}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		// Too many digits for 64 bits: out of range whatever its sign.
		return 0, rangeError(name, lo, hi)
	}
	if err := checkRange(name, n, lo, hi); err != nil {
		return 0, err
	}
	return int32(n), nil
}
