package vote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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

// ballotFile is proto/ballot.json's shape.
type ballotFile struct {
	Description string `json:"description"`
	Bands       []struct {
		Name   string `json:"name"`
		Albums []struct {
			Album string `json:"album"`
			Year  int32  `json:"year"`
		} `json:"albums"`
	} `json:"bands"`
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

// ParseBallot reads a ballot in proto/ballot.json's shape. Every band and album must be a text
// the vote rules accept as it is (trimmed, 1 to TextMaxChars characters), appear once, and every
// year must be from YearMin on: a ballot no vote could match is refused at start.
func ParseBallot(data []byte) (*Ballot, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f ballotFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(f.Bands) == 0 {
		return nil, errors.New("no bands")
	}
	b := &Ballot{years: make(map[string]map[string]int32, len(f.Bands))}
	for _, band := range f.Bands {
		if err := ballotText(band.Name); err != nil {
			return nil, fmt.Errorf("band %q: %w", band.Name, err)
		}
		if _, dup := b.years[band.Name]; dup {
			return nil, fmt.Errorf("band %q is listed twice", band.Name)
		}
		if len(band.Albums) == 0 {
			return nil, fmt.Errorf("band %q has no albums", band.Name)
		}
		albums := make(map[string]int32, len(band.Albums))
		for _, a := range band.Albums {
			if err := ballotText(a.Album); err != nil {
				return nil, fmt.Errorf("album %q of %q: %w", a.Album, band.Name, err)
			}
			if _, dup := albums[a.Album]; dup {
				return nil, fmt.Errorf("album %q of %q is listed twice", a.Album, band.Name)
			}
			if a.Year < YearMin {
				return nil, fmt.Errorf("album %q of %q: year %d is before %d", a.Album, band.Name, a.Year, YearMin)
			}
			albums[a.Album] = a.Year
		}
		b.years[band.Name] = albums
	}
	return b, nil
}

// ballotText: a ballot's name must be what a vote's text becomes after the format rules.
func ballotText(s string) error {
	checked, err := checkText("name", s)
	if err != nil {
		return err
	}
	if checked != s {
		return errors.New("has leading or trailing space")
	}
	return nil
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
