package vote

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// casesFile is the shared validation table; the Wasm producer's tests run the same file.
type casesFile struct {
	ClockYear int `json:"clock_year"`
	Cases     []struct {
		Description string `json:"description"`
		Body        string `json:"body"`
		BodyBase64  string `json:"body_base64"`
		Valid       bool   `json:"valid"`
		Field       string `json:"field"`
		Vote        Vote   `json:"vote"`
	} `json:"cases"`
}

func loadCases(t *testing.T) casesFile {
	t.Helper()
	// Relative to this package, under both go test and Bazel (the file is in the test's data).
	data, err := os.ReadFile("../../../proto/vote_cases.json")
	if err != nil {
		t.Fatalf("read shared cases: %v", err)
	}
	var f casesFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("parse shared cases: %v", err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("shared cases file has no cases")
	}
	return f
}

func TestParseSharedCases(t *testing.T) {
	f := loadCases(t)
	now := time.Date(f.ClockYear, time.June, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range f.Cases {
		t.Run(c.Description, func(t *testing.T) {
			body := []byte(c.Body)
			if c.BodyBase64 != "" {
				var err error
				if body, err = base64.StdEncoding.DecodeString(c.BodyBase64); err != nil {
					t.Fatalf("bad body_base64: %v", err)
				}
			}
			got, err := Parse(body, now)
			if c.Valid {
				if err != nil {
					t.Fatalf("Parse() error = %v, want valid", err)
				}
				if got != c.Vote {
					t.Fatalf("Parse() = %+v, want %+v", got, c.Vote)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse() error = %v, want a FieldError on %q", err, c.Field)
			}
			if fe.Field != c.Field {
				t.Fatalf("Parse() field = %q (%v), want %q", fe.Field, fe, c.Field)
			}
		})
	}
}

func TestParseUsesClockForLatestYear(t *testing.T) {
	body := []byte(`{"name":"a","album":"b","year":2031,"rank":1}`)
	if _, err := Parse(body, time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("year 2031 in 2030: %v", err)
	}
	if _, err := Parse(body, time.Date(2029, time.December, 31, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatal("year 2031 in 2029 was accepted")
	}
}
