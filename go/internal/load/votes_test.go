package load

import (
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/vote"
)

// Every ballot is a valid vote under the producers' own rules.
func TestBallotsAreValid(t *testing.T) {
	if len(Ballots) != len(Albums)*MaxRank {
		t.Fatalf("%d ballots", len(Ballots))
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
		bands[b.Band]++
	}
	if len(bands) != 2 {
		t.Errorf("bands %v, want 2", bands)
	}
}
