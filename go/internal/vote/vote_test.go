package vote

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
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
		// Ballot false: the case checks the format rules alone (made-up names).
		Ballot *bool  `json:"ballot"`
		Field  string `json:"field"`
		Vote   Vote   `json:"vote"`
	} `json:"cases"`
}

func loadCases(t *testing.T) casesFile {
	t.Helper()
	var f casesFile
	readTable(t, "vote_cases.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("shared cases file has no cases")
	}
	return f
}

// readTable decodes a shared table in proto/ into table.
func readTable(t *testing.T, name string, table any) {
	t.Helper()
	// Relative to this package, under both go test and Bazel (the file is in the test's data).
	data, err := os.ReadFile("../../../proto/" + name)
	if err != nil {
		t.Fatalf("read shared table: %v", err)
	}
	if err := json.Unmarshal(data, table); err != nil {
		t.Fatalf("parse shared table %s: %v", name, err)
	}
}

func loadBallot(t *testing.T) *Ballot {
	t.Helper()
	b, err := LoadBallot("../../../proto/ballot.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseSharedCases runs every case as a producer does: Parse, then the ballot's Check.
func TestParseSharedCases(t *testing.T) {
	f := loadCases(t)
	ballot := loadBallot(t)
	now := time.Date(f.ClockYear, time.June, 1, 0, 0, 0, 0, time.UTC)
	onBallot := 0
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
			if err == nil && (c.Ballot == nil || *c.Ballot) {
				onBallot++
				err = ballot.Check(got)
			}
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
	if onBallot < 10 {
		t.Errorf("only %d cases reached the ballot", onBallot)
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

// Check is Parse's rules on typed fields: every valid case of the table passes it unchanged, and
// typed versions of the invalid ones fail on the same field.
func TestCheckAgreesWithParse(t *testing.T) {
	f := loadCases(t)
	now := time.Date(f.ClockYear, time.June, 1, 0, 0, 0, 0, time.UTC)
	ballot := loadBallot(t)
	for _, c := range f.Cases {
		if !c.Valid {
			continue
		}
		if c.Ballot == nil || *c.Ballot {
			if err := ballot.Check(c.Vote); err != nil {
				t.Errorf("%s: ballot.Check(%+v) = %v", c.Description, c.Vote, err)
			}
		}
		got, err := Check(c.Vote, now)
		if err != nil || got != c.Vote {
			t.Errorf("%s: Check(%+v) = %+v, %v", c.Description, c.Vote, got, err)
		}
	}
	valid := Vote{Name: "Alux Nahual", Album: "Alux Nahual", Year: 1981, Rank: 1}
	for _, tc := range []struct {
		field string
		edit  func(*Vote)
	}{
		{"name", func(v *Vote) { v.Name = "  " }},
		{"name", func(v *Vote) { v.Name = string(make([]rune, TextMaxChars+1)) }},
		{"name", func(v *Vote) { v.Name = "bad \xff" }},
		{"album", func(v *Vote) { v.Album = "" }},
		{"year", func(v *Vote) { v.Year = YearMin - 1 }},
		{"year", func(v *Vote) { v.Year = int32(f.ClockYear + 2) }},
		{"rank", func(v *Vote) { v.Rank = RankMin - 1 }},
		{"rank", func(v *Vote) { v.Rank = RankMax + 1 }},
		{"name", func(v *Vote) { v.Name, v.Rank = "", 0 }}, // rule order: name before rank
	} {
		v := valid
		tc.edit(&v)
		_, err := Check(v, now)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Check(%+v) = %v, want an error on %s", v, err, tc.field)
		}
	}
	if got, err := Check(Vote{Name: " a ", Album: "b\t", Year: 2000, Rank: 5}, now); err != nil || got.Name != "a" || got.Album != "b" {
		t.Errorf("Check does not trim: %+v, %v", got, err)
	}
}

func TestCheckID(t *testing.T) {
	long := strings.Repeat("k", IDMaxChars)
	for _, id := range []string{"a", "0190f1e2-7c3a-7b2e-9d4f-1a2b3c4d5e6f", "order 42/retry~1", long} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", long + "k", "tab\there", "new\nline", "del\x7f", "ñandú", "\x00"} {
		if err := CheckID(id); err == nil {
			t.Errorf("CheckID(%q) = nil, want an error", id)
		}
	}
}

// ballotCasesFile is the shared table of ballot files; the Wasm producer and the API run it too.
type ballotCasesFile struct {
	Cases []struct {
		Description string          `json:"description"`
		Ballot      json.RawMessage `json:"ballot"`
		Text        *string         `json:"text"`
		Valid       bool            `json:"valid"`
		Path        string          `json:"path"`
	} `json:"cases"`
}

// TestParseBallotSharedCases runs every case of proto/ballot_cases.json: the same verdict, and for a
// refused file the same path, as the other implementations.
func TestParseBallotSharedCases(t *testing.T) {
	var f ballotCasesFile
	readTable(t, "ballot_cases.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("shared ballot cases file has no cases")
	}
	for _, c := range f.Cases {
		t.Run(c.Description, func(t *testing.T) {
			file := []byte(c.Ballot)
			if c.Text != nil {
				file = []byte(*c.Text)
			}
			_, err := ParseBallot(file)
			if c.Valid {
				if err != nil {
					t.Fatalf("ParseBallot() error = %v, want valid", err)
				}
				return
			}
			var be *BallotError
			if !errors.As(err, &be) {
				t.Fatalf("ParseBallot() error = %v, want a BallotError at %q", err, c.Path)
			}
			if be.Path != c.Path {
				t.Fatalf("ParseBallot() error = %v, want path %q", err, c.Path)
			}
		})
	}
}

func TestLoadBallot(t *testing.T) {
	if _, err := LoadBallot("../../../proto/ballot.json"); err != nil {
		t.Errorf("proto/ballot.json: %v", err)
	}
	if b, err := LoadBallot(BallotOff); b != nil || err != nil {
		t.Errorf("LoadBallot(off) = %v, %v; want no ballot", b, err)
	}
	var none *Ballot
	if err := none.Check(Vote{Name: "x", Album: "y", Year: 2000, Rank: 1}); err != nil {
		t.Errorf("no ballot refused a vote: %v", err)
	}
}
