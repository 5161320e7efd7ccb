package load

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"
)

// Result is what one run measured. Latency covers accepted votes only; everything else is in
// Errors by kind.
type Result struct {
	// Mode is "open" (fixed offered rate) or "closed" (Conns connections back to back).
	Mode string `json:"mode"`
	// Offered is the open loop's rate, votes per second.
	Offered float64 `json:"offered_per_s,omitempty"`
	// Conns is the most requests in flight: the connection pool's size.
	Conns int `json:"conns"`
	// Seconds is the run's length: from the first request to the last answer.
	Seconds float64 `json:"seconds"`
	// Scheduled is how many votes the open loop scheduled (rate × duration).
	Scheduled int64 `json:"scheduled,omitempty"`
	// OK is how many votes were accepted, Errors how many were not, by kind, and Unsent how many
	// scheduled votes the open loop dropped because their answer could no longer come in time.
	OK     int64            `json:"ok"`
	Errors map[string]int64 `json:"errors,omitempty"`
	Unsent int64            `json:"unsent,omitempty"`
	// Throughput is accepted votes per second over Seconds.
	Throughput float64 `json:"votes_per_s"`
	// Latency of accepted votes: from the time the vote was due (open loop; queueing included)
	// or sent (closed loop) to its answer.
	Latency Latency `json:"latency"`
}

// Open is an open-loop run: Rate votes per second for Duration, each sent when it is due by the
// first of Workers free workers (one connection each), its latency counted from when it was due.
// Votes still queued Grace after the end of the schedule are dropped as Unsent.
type Open struct {
	Rate     float64
	Duration time.Duration
	Workers  int
	Grace    time.Duration
}

// Closed is a closed-loop run: Conns workers, each casting its next vote as soon as the previous
// one is answered, for Duration.
type Closed struct {
	Conns    int
	Duration time.Duration
}

// tally gathers a run's outcomes from its workers.
type tally struct {
	hist   Histogram
	ok     atomic.Int64
	unsent atomic.Int64
	last   atomic.Int64 // latest answer, Unix ns
	mu     sync.Mutex
	errs   map[string]int64
	seq    atomic.Uint64
}

func (t *tally) done(at time.Time, lat time.Duration, err error) {
	for old := t.last.Load(); at.UnixNano() > old && !t.last.CompareAndSwap(old, at.UnixNano()); old = t.last.Load() {
	}
	if err == nil {
		t.ok.Add(1)
		t.hist.Record(lat)
		return
	}
	kind := Kind(err)
	t.mu.Lock()
	if t.errs == nil {
		t.errs = map[string]int64{}
	}
	t.errs[kind]++
	t.mu.Unlock()
}

func (t *tally) result(mode string, start time.Time, conns int) Result {
	var secs float64
	if last := t.last.Load(); last > 0 {
		secs = time.Unix(0, last).Sub(start).Seconds()
	}
	r := Result{
		Mode: mode, Conns: conns, Seconds: secs, OK: t.ok.Load(), Errors: t.errs, Unsent: t.unsent.Load(),
		Latency: t.hist.Summary(),
	}
	if secs > 0 {
		r.Throughput = float64(r.OK) / secs
	}
	return r
}

// Kind names an error briefly, for Result.Errors.
func Kind(err error) string {
	var se StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	if s, ok := status.FromError(err); ok {
		return "gRPC " + s.Code().String()
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "network: " + op.Op
	}
	return "other"
}

// RunOpen runs o against t; see Open.
func RunOpen(ctx context.Context, t Target, o Open) Result {
	n := int64(o.Rate * o.Duration.Seconds())
	interval := float64(time.Second) / o.Rate
	due := func(i int64) time.Duration { return time.Duration(float64(i) * interval) }
	if o.Grace <= 0 {
		o.Grace = o.Duration
	}
	jobs := make(chan int64, n)
	var tl tally
	start := time.Now()
	deadline := start.Add(o.Duration + o.Grace)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var wg sync.WaitGroup
	for range max(o.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if runCtx.Err() != nil {
					tl.unsent.Add(1)
					continue
				}
				at := start.Add(due(i))
				err := t.Cast(runCtx, Pick(tl.seq.Add(1)))
				now := time.Now()
				tl.done(now, now.Sub(at), err)
			}
		}()
	}
	// The dispatcher hands out every vote that is due, then sleeps until the next one is; when it
	// wakes late it sends the overdue ones at once, and their latency counts from when they were
	// due, so the generator's own lateness is charged too (never hidden).
	for i := int64(0); i < n && runCtx.Err() == nil; {
		now := time.Since(start)
		for ; i < n && due(i) <= now; i++ {
			jobs <- i
		}
		if i < n {
			time.Sleep(due(i) - time.Since(start))
		}
	}
	close(jobs)
	wg.Wait()
	r := tl.result("open", start, o.Workers)
	r.Offered, r.Scheduled = o.Rate, n
	r.Unsent = n - r.OK - sum(r.Errors) // dropped by the workers, or never dispatched in time
	return r
}

func sum(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// RunClosed runs c against t; see Closed.
func RunClosed(ctx context.Context, t Target, c Closed) Result {
	var tl tally
	start := time.Now()
	end := start.Add(c.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for range max(c.Conns, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && runCtx.Err() == nil {
				sent := time.Now()
				err := t.Cast(runCtx, Pick(tl.seq.Add(1)))
				now := time.Now()
				tl.done(now, now.Sub(sent), err)
			}
		}()
	}
	wg.Wait()
	return tl.result("closed", start, c.Conns)
}
