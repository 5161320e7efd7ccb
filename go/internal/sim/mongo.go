package sim

import (
	"context"
	"errors"

	"github.com/tally-voting/tally/go/internal/votelog"
)

// mongoFake is the logs collection with votelog.Store's semantics: unordered inserts keyed by
// vote id, the first stored log of an id kept for good. Its faults: a write that fails before
// storing anything, one that stores part of the batch and then fails (unordered inserts are not
// atomic), and a slow one that other actors overtake halfway.
type mongoFake struct {
	w      *world
	docs   map[string]storedLog
	faults int // how many of the next writes fail
}

type storedLog struct {
	votelog.Log
	seq int // insertion order, for the trace
}

func (m *mongoFake) fault() {
	m.faults += 1 + m.w.rng.IntN(3)
	m.w.stats.MongoFaults++
	m.w.tracef("mongo: the next %d writes fail", m.faults)
}

var errMongo = errors.New("mongo: connection reset (simulated)")

func (m *mongoFake) Insert(ctx context.Context, logs []votelog.Log) ([]votelog.Log, error) {
	w := m.w
	w.yield(nil)
	if len(logs) == 0 {
		return nil, nil
	}
	written := len(logs)
	failing := m.faults > 0
	if failing {
		m.faults--
		written = w.rng.IntN(len(logs) + 1) // how many were stored before the failure
	}
	slow := !failing && len(logs) > 1 && w.rng.IntN(4) == 0
	half := len(logs) / 2
	for i, l := range logs[:written] {
		if slow && i == half {
			w.tracef("mongo: slow write, halfway")
			w.yield(nil)
		}
		if _, ok := m.docs[l.VoteID]; !ok {
			m.docs[l.VoteID] = storedLog{Log: l, seq: len(m.docs)}
			w.tracef("mongo: log %s = %d:%d", l.VoteID, l.Partition, l.Offset)
		}
	}
	if failing {
		w.tracef("mongo: write failed after %d of %d", written, len(logs))
		return nil, errMongo
	}
	stored := make([]votelog.Log, len(logs))
	for i, l := range logs {
		stored[i] = m.docs[l.VoteID].Log
	}
	return stored, nil
}

func (m *mongoFake) Recount(ctx context.Context, through map[int]int64) (map[votelog.BandAlbum]int64, error) {
	m.w.yield(nil)
	if m.faults > 0 && m.w.rng.IntN(2) == 0 {
		return nil, errMongo
	}
	return m.recount(through), nil
}

func (m *mongoFake) recount(through map[int]int64) map[votelog.BandAlbum]int64 {
	out := map[votelog.BandAlbum]int64{}
	for _, d := range m.docs {
		if w, ok := through[d.Partition]; ok && d.Offset <= w {
			out[votelog.BandAlbum{Band: d.Name, Album: d.Album}]++
		}
	}
	return out
}
