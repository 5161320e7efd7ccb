// Package load generates votes at the producers' HTTP API (docs/api.md) or at a gRPC VoteService
// and measures what comes back: open-loop runs at a fixed offered rate, in which every request is
// scheduled at its time whatever the earlier ones are doing and its latency is counted from that
// time (so a stalled server is charged for the queue it causes: no coordinated omission), and
// closed-loop runs in which N connections send back to back (saturation). Latencies go to a
// log-bucketed Histogram. go/bench runs it against every producer route side by side.
package load

import (
	"encoding/json"
	"fmt"
)

// Album is one album that can be voted for.
type Album struct {
	Band  string `json:"name"`
	Title string `json:"album"`
	Year  int32  `json:"year"`
}

// Albums are the benchmark's ballot: two bands, two albums each, all on the contest's ballot
// (proto/ballot.json; votes_test.go fails when they drift from it).
var Albums = []Album{
	{"Bohemia Suburbana", "Sombras en el Jardín", 1993},
	{"Bohemia Suburbana", "Imaginaria Sonora", 2015},
	{"Alux Nahual", "Conquista", 1982},
	{"Alux Nahual", "Alto al Fuego", 1987},
}

// Ranks are 1 to MaxRank.
const MaxRank = 10

// Vote is one ballot and its HTTP body, encoded once.
type Vote struct {
	Album
	Rank int32
	Body []byte
}

// Ballots are every valid vote of Albums × ranks, with their JSON bodies; Pick cycles through
// them.
var Ballots = func() []Vote {
	var out []Vote
	for r := int32(1); r <= MaxRank; r++ {
		for _, a := range Albums {
			body, err := json.Marshal(struct {
				Album
				Rank int32 `json:"rank"`
			}{a, r})
			if err != nil {
				panic(fmt.Sprintf("encode ballot: %v", err))
			}
			out = append(out, Vote{Album: a, Rank: r, Body: body})
		}
	}
	return out
}()

// Pick is the i-th vote of a run: every album in turn, each rank in turn.
func Pick(i uint64) *Vote { return &Ballots[i%uint64(len(Ballots))] }
