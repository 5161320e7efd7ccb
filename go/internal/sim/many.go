package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Plan is a series of schedules, seeds First to First+Count-1, run in parallel.
type Plan struct {
	First   uint64
	Count   int
	Workers int // runs at a time, each on a Redis database of its own: FirstDB, FirstDB+1...
	FirstDB int
	// MaxFailures stops the series once that many seeds failed (0: never).
	MaxFailures int
	// Progress, if set, is called after every ProgressEvery schedules.
	Progress      func(Summary)
	ProgressEvery int
}

// Summary is what a series did so far.
type Summary struct {
	First     uint64
	Schedules int      // run to the end
	Failed    []Result // the seeds that broke an invariant, in the order they ended
	Stats     Stats
	Elapsed   time.Duration
}

// Rate is schedules a second.
func (s Summary) Rate() float64 { return float64(s.Schedules) / s.Elapsed.Seconds() }

func (s Summary) String() string {
	return fmt.Sprintf("%d schedules from seed %d, %d failed, in %v (%.0f a second): %d records produced, "+
		"%d deleted by retention, %d named lost, %d Redis crashes, %d rebalances, %d kills, %d audits of which %d repaired, %d MongoDB faults",
		s.Schedules, s.First, len(s.Failed), s.Elapsed.Round(time.Second), s.Rate(), s.Stats.Produced,
		s.Stats.Deleted, s.Stats.LostNamed, s.Stats.RedisCrashes, s.Stats.Rebalances, s.Stats.Kills,
		s.Stats.Audits, s.Stats.Repairs, s.Stats.MongoFaults)
}

// RunMany runs plan's schedules with cfg against the Redis of opts. Each seed's run is the same
// whichever worker runs it, so a failing seed replays alone (Run, or a Plan of Count 1).
func RunMany(ctx context.Context, plan Plan, cfg Config, opts *redis.Options) (Summary, error) {
	var (
		mu      sync.Mutex
		sum     = Summary{First: plan.First}
		next    = plan.First
		end     = plan.First + uint64(plan.Count)
		firstEr error
		wg      sync.WaitGroup
	)
	started := time.Now()
	// take hands out the next seed, or reports false when the series is over.
	take := func() (uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= end || firstEr != nil || ctx.Err() != nil ||
			(plan.MaxFailures > 0 && len(sum.Failed) >= plan.MaxFailures) {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for i := range max(plan.Workers, 1) {
		o := *opts
		o.DB = plan.FirstDB + i
		db := NewRedis(&o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer db.Close()
			for {
				seed, ok := take()
				if !ok {
					return
				}
				// A run started ends whole: a cancelled ctx only stops new ones from starting.
				res, err := Run(context.WithoutCancel(ctx), seed, cfg, db)
				mu.Lock()
				if err != nil {
					if firstEr == nil {
						firstEr = fmt.Errorf("seed %d on database %d: %w", seed, o.DB, err)
					}
					mu.Unlock()
					return
				}
				sum.Schedules++
				sum.Stats.add(res.Stats)
				if res.Failed() {
					sum.Failed = append(sum.Failed, res)
				}
				if plan.Progress != nil && plan.ProgressEvery > 0 && sum.Schedules%plan.ProgressEvery == 0 {
					sum.Elapsed = time.Since(started)
					plan.Progress(sum)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sum.Elapsed = time.Since(started)
	return sum, firstEr
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
