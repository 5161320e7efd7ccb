package sim

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tally-voting/tally/go/internal/audit"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// check tests the invariants once the run is drained and every actor stopped:
//   - every accepted record is counted (its vote id's log is at or below its partition's
//     watermark), dead-lettered if it is not a vote, or named lost by a consumer's error log
//     line, and tally_consumer_retention_lost_records_total adds up to exactly the named records;
//   - every log is the log of a record of its vote id, at the partition and offset it names,
//     with that record's band and album;
//   - the counts equal the logs at or below the watermarks (after the audit's repair, which an
//     operator runs once a loss was named), so every vote id in the logs is counted once.
func (w *world) check(ctx context.Context) {
	k := w.kafka
	marks := w.redis.watermarks()

	metric := 0.0
	for _, c := range w.consumers {
		metric += c.metric("tally_consumer_retention_lost_records_total")
	}
	if int(metric) != w.stats.LostNamed {
		w.violate("tally_consumer_retention_lost_records_total adds up to %v, the error log lines name %d records", metric, w.stats.LostNamed)
	}
	named := func(p int, o int64) bool {
		for _, l := range w.losses {
			if l.p == p && o >= l.from && o < l.from+l.n {
				return true
			}
		}
		return false
	}
	for p, records := range k.logs {
		for o, m := range records {
			at := fmt.Sprintf("%d:%d", p, o)
			if named(p, int64(o)) {
				continue
			}
			r, err := queue.Decode(m)
			if err != nil {
				if !w.dead[at] {
					w.violate("record %s is not a vote, yet not dead-lettered nor named lost", at)
				}
				continue
			}
			d, ok := w.mongo.docs[r.Vote.GetVoteId()]
			if !ok {
				w.violate("record %s (vote %s) is neither counted nor named lost (watermark %v)", at, r.Vote.GetVoteId(), marks[p])
				continue
			}
			if mark, ok := marks[d.Partition]; !ok || d.Offset > mark {
				w.violate("the log of vote %s (record %d:%d) is above its partition's watermark %v", d.VoteID, d.Partition, d.Offset, marks[d.Partition])
			}
		}
	}
	for _, id := range sortedKeys(w.mongo.docs) {
		d := w.mongo.docs[id]
		r, err := queue.Decode(k.logs[d.Partition][d.Offset])
		if err != nil || r.Vote.GetVoteId() != id || r.Vote.GetName() != d.Name || r.Vote.GetAlbum() != d.Album {
			w.violate("the log of vote %s names record %d:%d, which holds another vote (%v)", id, d.Partition, d.Offset, err)
		}
	}

	store := counts.New(w.redis.oracle)
	if len(w.losses) > 0 {
		if _, err := audit.Run(ctx, store, oracleLogs{w.mongo}, true, slog.New(slog.DiscardHandler)); err != nil {
			w.violate("the final audit -repair failed: %v", err)
			return
		}
	}
	snap, err := store.Snapshot(ctx, w.cfg.Partitions)
	if err != nil {
		w.violate("read the counts: %v", err)
		return
	}
	var want counts.Counts
	for ba, n := range w.mongo.recount(marks) {
		want.Add(ba.Band, ba.Album, n)
	}
	if !sameCounts(snap.Counts, want) {
		w.violate("the counts differ from the logs at or below the watermarks %v: Redis total %d by band %v, logs total %d by band %v",
			marks, snap.Total, snap.ByBand, want.Total, want.ByBand)
	}
}

// oracleLogs recounts outside the schedule (for the final repair).
type oracleLogs struct{ m *mongoFake }

func (o oracleLogs) Recount(_ context.Context, through map[int]int64) (map[votelog.BandAlbum]int64, error) {
	return o.m.recount(through), nil
}

func sameCounts(a, b counts.Counts) bool {
	if a.Total != b.Total || !sameInts(a.ByBand, b.ByBand) || !sameInts(a.ByAlbum, b.ByAlbum) {
		return false
	}
	for _, band := range counts.Bands(a, b) {
		if !sameInts(a.BandAlbums[band], b.BandAlbums[band]) {
			return false
		}
	}
	return true
}

// sameInts compares counts, a missing field being 0.
func sameInts(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
