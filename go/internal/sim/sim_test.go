package sim

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/test/testenv"
)

// TestSchedules runs SIM_SCHEDULES schedules (default 2000) from SIM_SEED on (default 1), on
// as many Redis databases in parallel as there are CPUs, and fails on the first seeds that
// break an invariant, printing each with the trace of its replay.
func TestSchedules(t *testing.T) {
	opts := testenv.RedisOptions(t)
	schedules := testenv.Int(t, "SIM_SCHEDULES", 2000)
	first := uint64(testenv.Int(t, "SIM_SEED", 1))
	workers := min(runtime.GOMAXPROCS(0), 8)
	maxFailures := testenv.Int(t, "SIM_MAX_FAILURES", 5)
	// Each worker has a Redis database of its own: 1, 2... or from SIM_DB on (for runs that
	// share a Redis).
	db := testenv.Int(t, "SIM_DB", 1)
	var (
		next   atomic.Uint64
		mu     sync.Mutex
		failed []Result
		totals Stats
		done   int
		wg     sync.WaitGroup
	)
	next.Store(first)
	started := time.Now()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := *opts
			o.DB = db + i
			for {
				seed := next.Add(1) - 1
				if seed >= first+uint64(schedules) {
					return
				}
				mu.Lock()
				stop := len(failed) >= maxFailures
				mu.Unlock()
				if stop {
					return
				}
				res, err := Run(context.Background(), seed, DefaultConfig(), &o)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				totals.add(res.Stats)
				done++
				if res.Failed() {
					failed = append(failed, res)
				}
				if done%10000 == 0 {
					t.Logf("%d schedules in %v, %d failed: %+v", done, time.Since(started).Round(time.Second), len(failed), totals)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d schedules from seed %d in %v: %+v", done, first, time.Since(started).Round(time.Millisecond), totals)
	for _, f := range failed {
		t.Errorf("%s", f)
	}
	if len(failed) > 0 {
		replay := DefaultConfig()
		replay.Trace = true
		o := *opts
		o.DB = db
		res, err := Run(context.Background(), failed[0].Seed, replay, &o)
		if err != nil {
			t.Fatal(err)
		}
		tail := res.Trace[max(0, len(res.Trace)-testenv.Int(t, "SIM_TRACE_LINES", 300)):]
		t.Logf("replay of seed %d (%d violations, last %d of %d trace lines):\n%s", res.Seed, len(res.Violations),
			len(tail), len(res.Trace), strings.Join(tail, "\n"))
	}
}

// A seed is one interleaving: two runs of it take the same steps, with the same outcome.
func TestReplayIsExact(t *testing.T) {
	opts := testenv.RedisOptions(t)
	o := *opts
	o.DB = testenv.Int(t, "SIM_DB", 1)
	cfg := DefaultConfig()
	cfg.Trace = true
	for _, seed := range []uint64{3, 64} {
		a, err := Run(context.Background(), seed, cfg, &o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Run(context.Background(), seed, cfg, &o)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Trace) < 100 || !slices.Equal(a.Trace, b.Trace) || a.Stats != b.Stats {
			t.Errorf("seed %d: two runs differ (%d and %d trace lines, stats %+v and %+v)", seed, len(a.Trace), len(b.Trace), a.Stats, b.Stats)
			for i := range min(len(a.Trace), len(b.Trace)) {
				if a.Trace[i] != b.Trace[i] {
					t.Errorf("first difference, line %d:\n%s\n%s", i, a.Trace[i], b.Trace[i])
					break
				}
			}
		}
	}
}

func (s *Stats) add(o Stats) {
	s.Produced += o.Produced
	s.Deleted += o.Deleted
	s.RedisCrashes += o.RedisCrashes
	s.Rebalances += o.Rebalances
	s.Kills += o.Kills
	s.Audits += o.Audits
	s.Repairs += o.Repairs
	s.MongoFaults += o.MongoFaults
	s.LostNamed += o.LostNamed
}
