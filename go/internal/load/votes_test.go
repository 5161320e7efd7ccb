package load

import (
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/vote"
)

// Every ballot is a valid vote under the producers' own rules, on the contest's ballot
// (proto/ballot.json), which the producers check votes against.
func TestBallotsAreValid(t *testing.T) {
	if len(Ballots) != len(Albums)*MaxRank {
		t.Fatalf("%d ballots", len(Ballots))
	}
	ballot, err := vote.LoadBallot("../../../proto/ballot.json") // in the test's data under Bazel
	if err != nil {
		t.Fatal(err)
	}
	bands := map[string]int{}
	for _, b := range Ballots {
		v, err := vote.Parse(b.Body, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", b.Body, err)
		}
		if v.Name != b.Band || v.Album != b.Title || v.Year != b.Year || v.Rank != b.Rank {
			t.Errorf("%s parsed as %+v", b.Body, v)
		}
		if err := ballot.Check(v); err != nil {
			t.Errorf("%s is off the ballot: %v", b.Body, err)
		}
		bands[b.Band]++
	}
	if len(bands) != 2 {
		t.Errorf("bands %v, want 2", bands)
	}
}
