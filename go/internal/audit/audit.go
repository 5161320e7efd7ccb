// Package audit recounts the votes from MongoDB's logs and compares them with Redis's counts
// (total, per band, per album, each band's albums), and on request rewrites the counts from the
// logs. go/cmd/audit runs it; docs/data.md says why it is exact while consumers run.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// Counts reads and rewrites Redis's counts (a *counts.Store).
type Counts interface {
	Snapshot(ctx context.Context, partitions int) (counts.Snapshot, error)
	Replace(ctx context.Context, at counts.Snapshot, c counts.Counts) error
}

// Logs recounts MongoDB's logs at or below the watermarks (a *votelog.Store).
type Logs interface {
	Recount(ctx context.Context, through map[int]int64) (map[votelog.BandAlbum]int64, error)
}

// ErrDiffer is Run's error when the counts differ from the logs (and were not repaired).
var ErrDiffer = errors.New("Redis's counts differ from MongoDB's logs")

// Result is what an audit found and did.
type Result struct {
	Differences int
	Repaired    bool
}

// Run compares once, logging every difference, and with repair rewrites the counts if they
// differ. It returns an error wrapping ErrDiffer if they differ and were not repaired.
func Run(ctx context.Context, store Counts, logs Logs, repair bool, log *slog.Logger) (Result, error) {
	snap, err := store.Snapshot(ctx, queue.VotesPartitions)
	if err != nil {
		return Result{}, err
	}
	recount, err := logs.Recount(ctx, snap.Applied)
	if err != nil {
		return Result{}, err
	}
	var want counts.Counts
	for ba, n := range recount {
		want.Add(ba.Band, ba.Album, n)
	}
	diffs := compare(snap.Counts, want)
	for _, d := range diffs {
		log.Warn("difference", "count", d.count, "key", d.key, "field", d.field, "redis", d.redis, "logs", d.logs)
	}
	log.Info("audited", "watermarks", snap.Applied, "votes_in_logs", want.Total, "votes_in_redis", snap.Total,
		"differences", len(diffs))
	res := Result{Differences: len(diffs)}
	if len(diffs) == 0 {
		return res, nil
	}
	if !repair {
		return res, fmt.Errorf("%w: %d differences (rerun with -repair to rewrite the counts from the logs)", ErrDiffer, len(diffs))
	}
	if err := store.Replace(ctx, snap, want); err != nil {
		if errors.Is(err, counts.ErrMoved) {
			return res, fmt.Errorf("%w: not repaired: %w; stop the consumers (or wait until no votes arrive) and rerun", ErrDiffer, err)
		}
		return res, err
	}
	log.Info("repaired: Redis's counts rewritten from the logs", "votes", want.Total)
	res.Repaired = true
	return res, nil
}

// difference is one count that is not what the logs say.
type difference struct {
	count, key, field string
	redis, logs       int64
}

// compare lists every count of got that differs from want.
func compare(got, want counts.Counts) []difference {
	var diffs []difference
	if got.Total != want.Total {
		diffs = append(diffs, difference{"total", counts.TotalKey, "", got.Total, want.Total})
	}
	hash := func(count, key string, g, w map[string]int64) {
		for _, f := range slices.Sorted(maps.Keys(union(g, w))) {
			if g[f] != w[f] {
				diffs = append(diffs, difference{count, key, f, g[f], w[f]})
			}
		}
	}
	hash("by_band", counts.BandKey, got.ByBand, want.ByBand)
	hash("by_album", counts.AlbumKey, got.ByAlbum, want.ByAlbum)
	for _, b := range counts.Bands(got, want) {
		hash("band_albums", counts.BandAlbumsKey(b), got.BandAlbums[b], want.BandAlbums[b])
	}
	return diffs
}

func union(a, b map[string]int64) map[string]bool {
	u := make(map[string]bool, len(a)+len(b))
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}
