package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Answer is one vote of a Steady run and what its route answered.
type Answer struct {
	// Key is the vote's Idempotency-Key, so its vote id.
	Key  string
	Vote *Vote
	// Due is when the vote was scheduled, Sent when a worker sent it, Answered when the answer
	// (or the failure) came.
	Due, Sent, Answered time.Time
	// Status is the HTTP status, 0 when no answer came (Err says why).
	Status int
	Err    error
}

// Accepted says whether the route acknowledged the vote (HTTP 202).
func (a Answer) Accepted() bool { return a.Status == http.StatusAccepted }

// Steady casts votes on one HTTP route at a fixed rate, each with an Idempotency-Key of its own,
// and keeps every answer: for a caller that must know which votes were accepted and when (the
// failover test and benchmark). Votes are sent when due by the first free worker; when all are
// busy (a route that holds its answers) they wait their turn, so the rate stays what was offered.
type Steady struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	answers []Answer
}

// StartSteady starts rate votes per second on h with workers workers, the i-th vote with the
// key prefix-i; Stop ends it.
func StartSteady(ctx context.Context, h *HTTP, rate float64, workers int, prefix string) *Steady {
	ctx, cancel := context.WithCancel(ctx)
	s := &Steady{cancel: cancel, done: make(chan struct{})}
	type job struct {
		i   uint64
		due time.Time
	}
	jobs := make(chan job, 1<<16)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				a := Answer{Key: fmt.Sprintf("%s-%07d", prefix, j.i), Vote: Pick(j.i), Due: j.due, Sent: time.Now()}
				// The answer is waited for even after Stop: a vote sent is a vote to account for.
				a.Err = h.CastKeyed(context.WithoutCancel(ctx), a.Vote, a.Key)
				a.Answered = time.Now()
				var se StatusError
				switch {
				case a.Err == nil:
					a.Status = http.StatusAccepted
				case errors.As(a.Err, &se):
					a.Status = se.Code
				}
				s.mu.Lock()
				s.answers = append(s.answers, a)
				s.mu.Unlock()
			}
		}()
	}
	go func() {
		defer close(s.done)
		defer wg.Wait()
		defer close(jobs)
		interval := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		for i := uint64(0); ; i++ {
			due := start.Add(time.Duration(i) * interval)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(due)):
			}
			select {
			case jobs <- job{i, due}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// Answers returns the answers so far, in the order they came.
func (s *Steady) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// StopSending schedules no more votes; those already due are still sent (Stop waits for them).
// Several runs are ended together by calling it on each before Stop.
func (s *Steady) StopSending() { s.cancel() }

// Stop sends no more votes, waits for the answers of those due and returns every answer.
func (s *Steady) Stop() []Answer {
	s.cancel()
	<-s.done
	return s.Answers()
}
