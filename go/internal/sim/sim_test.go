package sim

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tally-voting/tally/go/test/testenv"
)

// TestSchedules runs SIM_SCHEDULES schedules (default 4000) from SIM_SEED on (default 1),
// SIM_WORKERS at a time (default 4) on Redis databases SIM_DB, SIM_DB+1... (default 1), and fails
// on the first seeds that break an invariant, printing each with the trace of its replay.
// For long series, go/cmd/simulate prints progress and the rate.
func TestSchedules(t *testing.T) {
	opts := testenv.RedisOptions(t)
	plan := Plan{
		First:       uint64(testenv.Int(t, "SIM_SEED", 1)),
		Count:       testenv.Int(t, "SIM_SCHEDULES", 4000),
		Workers:     testenv.Int(t, "SIM_WORKERS", 4),
		FirstDB:     testenv.Int(t, "SIM_DB", 1),
		MaxFailures: testenv.Int(t, "SIM_MAX_FAILURES", 5),
	}
	sum, err := RunMany(context.Background(), plan, DefaultConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(sum)
	for _, f := range sum.Failed {
		t.Errorf("%s", f)
	}
	if len(sum.Failed) > 0 {
		db := NewRedis(opts)
		defer db.Close()
		replay := DefaultConfig()
		replay.Trace = true
		res, err := Run(context.Background(), sum.Failed[0].Seed, replay, db)
		if err != nil {
			t.Fatal(err)
		}
		tail := res.Trace[max(0, len(res.Trace)-testenv.Int(t, "SIM_TRACE_LINES", 300)):]
		t.Logf("replay of seed %d (%d violations, last %d of %d trace lines):\n%s", res.Seed, len(res.Violations),
			len(tail), len(res.Trace), strings.Join(tail, "\n"))
	}
}

// A seed is one interleaving: two runs of it take the same steps, with the same outcome, on new
// clients or on clients that earlier runs used.
func TestReplayIsExact(t *testing.T) {
	opts := testenv.RedisOptions(t)
	o := *opts
	o.DB = testenv.Int(t, "SIM_DB", 1)
	cfg := DefaultConfig()
	cfg.Trace = true
	for _, seed := range []uint64{3, 64} {
		fresh := NewRedis(&o)
		a, err := Run(context.Background(), seed, cfg, fresh)
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		used := NewRedis(&o)
		for s := range uint64(20) {
			if _, err := Run(context.Background(), 1000+s, DefaultConfig(), used); err != nil {
				t.Fatal(err)
			}
		}
		b, err := Run(context.Background(), seed, cfg, used)
		used.Close()
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
