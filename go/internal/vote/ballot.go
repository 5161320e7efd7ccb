package vote

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
)

// BallotOff is the ballot setting (TALLY_BALLOT) that turns the ballot off: only the format rules
// apply. Tests about something other than the ballot use it; Tally itself never does.
const BallotOff = "off"

// Ballot is the contest's ballot (proto/ballot.json): the bands that can be voted for, each band's
// albums, and each album's year. A vote passes it when its band is on it, its album is one of that
// band's, and its year is that album's. A nil *Ballot passes every vote.
type Ballot struct {
	years map[string]map[string]int32 // band → album → year
}

// BallotError is a ballot file's first broken rule: Path names the value that breaks it, "" for
// the file as a whole, else members and indexes from the top (bands[1].albums[0].year), as the
// shared table proto/ballot_cases.json states them.
type BallotError struct {
	Path   string
	Reason string
}

func (e *BallotError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// LoadBallot reads the ballot at path; BallotOff gives nil (no ballot).
func LoadBallot(path string) (*Ballot, error) {
	if path == BallotOff {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ballot: %w", err)
	}
	b, err := ParseBallot(data)
	if err != nil {
		return nil, fmt.Errorf("ballot %s: %w", path, err)
	}
	return b, nil
}

// ParseBallot reads a ballot in proto/ballot.json's shape, by the rules of proto/ballot_cases.json
// (proto/README.md): exactly the members named there, at least one band, every band with albums,
// every name a text the vote rules accept as it is (trimmed, 1 to TextMaxChars characters) and
// listed once, every year a whole number from YearMin to the largest int32. A ballot no vote could
// match is refused at start. The file is walked by hand, not decoded into a struct, so that the
// error names the exact value (encoding/json would match member names case-insensitively and
// name no array index).
func ParseBallot(data []byte) (*Ballot, error) {
	file, err := ballotObject(data, "", "description", "bands")
	if err != nil {
		return nil, err
	}
	if raw, ok := file["description"]; ok {
		if _, err := ballotString(raw, "description"); err != nil {
			return nil, err
		}
	}
	bands, err := ballotArray(file["bands"], "bands")
	if err != nil {
		return nil, err
	}
	b := &Ballot{years: make(map[string]map[string]int32, len(bands))}
	for i, raw := range bands {
		path := fmt.Sprintf("bands[%d]", i)
		band, err := ballotObject(raw, path, "name", "albums")
		if err != nil {
			return nil, err
		}
		name, err := ballotText(band["name"], path+".name")
		if err != nil {
			return nil, err
		}
		if _, dup := b.years[name]; dup {
			return nil, &BallotError{Path: path + ".name", Reason: fmt.Sprintf("band %q is listed twice", name)}
		}
		if b.years[name], err = ballotAlbums(band["albums"], path+".albums"); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// ballotAlbums reads a band's albums: album → year.
func ballotAlbums(data json.RawMessage, path string) (map[string]int32, error) {
	albums, err := ballotArray(data, path)
	if err != nil {
		return nil, err
	}
	years := make(map[string]int32, len(albums))
	for i, raw := range albums {
		path := fmt.Sprintf("%s[%d]", path, i)
		album, err := ballotObject(raw, path, "album", "year")
		if err != nil {
			return nil, err
		}
		title, err := ballotText(album["album"], path+".album")
		if err != nil {
			return nil, err
		}
		if _, dup := years[title]; dup {
			return nil, &BallotError{Path: path + ".album", Reason: fmt.Sprintf("album %q is listed twice under this band", title)}
		}
		if years[title], err = ballotYear(album["year"], path+".year"); err != nil {
			return nil, err
		}
	}
	return years, nil
}

// ballotYear reads a year: a JSON number (1990.0 is 1990) that is a whole number from YearMin to
// the largest int32, the vote's year type.
func ballotYear(data json.RawMessage, path string) (int32, error) {
	var value any
	if json.Unmarshal(data, &value) == nil {
		if n, ok := value.(float64); ok && n == math.Trunc(n) && n >= YearMin && n <= math.MaxInt32 {
			return int32(n), nil
		}
	}
	return 0, &BallotError{Path: path, Reason: fmt.Sprintf("must be a whole number from %d to %d", YearMin, math.MaxInt32)}
}

// ballotObject reads a JSON object whose members are among known; a repeated member keeps its
// last value. An unknown member is reported by its path, the first in byte order.
func ballotObject(data json.RawMessage, path string, known ...string) (map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil || members == nil {
		reason := "must be an object"
		if path == "" && err != nil && !json.Valid(data) {
			reason = fmt.Sprintf("is not JSON: %v", err)
		}
		return nil, &BallotError{Path: path, Reason: reason}
	}
	names := slices.Sorted(maps.Keys(members))
	for _, name := range names {
		if !slices.Contains(known, name) {
			return nil, &BallotError{Path: memberPath(path, name), Reason: "is not a known field"}
		}
	}
	return members, nil
}

func memberPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// ballotArray reads a non-empty JSON array.
func ballotArray(data json.RawMessage, path string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil || len(items) == 0 {
		return nil, &BallotError{Path: path, Reason: "must be a non-empty array"}
	}
	return items, nil
}

func ballotString(data json.RawMessage, path string) (string, error) {
	var value any
	if json.Unmarshal(data, &value) == nil {
		if s, ok := value.(string); ok {
			return s, nil
		}
	}
	return "", &BallotError{Path: path, Reason: "must be a string"}
}

// ballotText: a ballot's name must be what a vote's text becomes after the format rules.
func ballotText(data json.RawMessage, path string) (string, error) {
	s, err := ballotString(data, path)
	if err != nil {
		return "", err
	}
	checked, err := checkText("name", s)
	if err != nil {
		var field *FieldError
		if errors.As(err, &field) {
			return "", &BallotError{Path: path, Reason: field.Reason}
		}
		return "", err
	}
	if checked != s {
		return "", &BallotError{Path: path, Reason: "has leading or trailing space"}
	}
	return s, nil
}

// Check says which field of a well-formed vote (one that passed Parse or Check) is off the ballot:
// name, then album, then year; nil if none is. Names compare exactly (case and accents count).
func (b *Ballot) Check(v Vote) error {
	if b == nil {
		return nil
	}
	albums, ok := b.years[v.Name]
	if !ok {
		return &FieldError{Field: "name", Reason: "is not a band on the ballot"}
	}
	year, ok := albums[v.Album]
	if !ok {
		return &FieldError{Field: "album", Reason: "is not an album of this band on the ballot"}
	}
	if v.Year != year {
		return &FieldError{Field: "year", Reason: fmt.Sprintf("must be %d, the album's year on the ballot", year)}
	}
	return nil
}
