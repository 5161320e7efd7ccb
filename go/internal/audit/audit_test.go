package audit

import (
	"slices"
	"testing"

	"github.com/tally-voting/tally/go/internal/counts"
)

func TestCompareNamesEveryDifferentCount(t *testing.T) {
	var logs, redis counts.Counts
	logs.Add("Alux Nahual", "Leyenda", 3)
	logs.Add("Bohemia Suburbana", "Eres", 2)
	redis.Add("Alux Nahual", "Leyenda", 3)
	redis.Add("Bohemia Suburbana", "Eres", 1)
	redis.Add("Viernes Verde", "Verde Esperanza", 1) // a band the logs do not have
	var got []string
	for _, d := range compare(redis, logs) {
		got = append(got, d.count+" "+d.field)
	}
	want := []string{
		"by_band Bohemia Suburbana", "by_band Viernes Verde",
		"by_album Bohemia Suburbana — Eres", "by_album Viernes Verde — Verde Esperanza",
		"band_albums Eres", "band_albums Verde Esperanza",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("differences = %q, want %q", got, want)
	}
	if d := compare(logs, logs); len(d) != 0 {
		t.Fatalf("the same counts differ: %v", d)
	}
}
