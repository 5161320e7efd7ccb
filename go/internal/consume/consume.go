// Package consume is the consumer's loop. It reads topic votes as a member of consumer group
// Group, hands each partition's records to a goroutine of its own, and applies them in batches
// (BatchSize records, or what arrived within BatchWait of a batch's first record), each batch in
// an order that makes every step safe to repeat:
//
//  1. records that are not votes go to the dead-letter topic, acknowledged by every replica;
//  2. one log document per vote goes to MongoDB, keyed by vote id (a repeat is a no-op);
//  3. one Redis script counts the votes and advances the partition's applied-offset watermark,
//     skipping records at or below it and vote ids already counted (go/internal/counts);
//  4. the batch's last offset is committed to Kafka.
//
// A crash or a rebalance between any two steps replays the batch, which changes nothing already
// done, so every vote is counted exactly once. A failing write is retried with backoff for as
// long as it takes (the consumer reports not-ready meanwhile); nothing is committed past a record
// that is not applied.
package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// Group is the consumer group every replica joins; it starts at the earliest offset a partition
// has when the group has committed none.
const Group = "tally-consumer"

// Config tunes the loop; zero fields take the defaults below.
type Config struct {
	// BatchSize is the most records of one partition applied together.
	BatchSize int
	// BatchWait is how long a batch waits for more records after its first one.
	BatchWait time.Duration
	// RetryMin and RetryMax bound the backoff between attempts at a failing write.
	RetryMin, RetryMax time.Duration
	// AttemptTimeout bounds one attempt at a write or a commit.
	AttemptTimeout time.Duration
	// DrainTimeout is how long the batches in hand may take once Run's context is done.
	DrainTimeout time.Duration
}

// Defaults of Config. DefaultBatchSize is large because every batch costs the MongoDB-wire
// server a fixed amount besides its inserts (logs_recent's insert, read and trim): on 2 cores a
// 200k-vote backlog drained at about 3,900 votes/s with 500, 8,000 with 1,000 and 11,000 with
// 2,000 (docs/performance.md).
const (
	DefaultBatchSize      = 2000
	DefaultBatchWait      = 50 * time.Millisecond
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultDrainTimeout   = 8 * time.Second
)

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	set(&c.BatchWait, DefaultBatchWait)
	set(&c.RetryMin, DefaultRetryMin)
	set(&c.RetryMax, DefaultRetryMax)
	set(&c.AttemptTimeout, DefaultAttemptTimeout)
	set(&c.DrainTimeout, DefaultDrainTimeout)
	return c
}

// Fetcher is the group's reader of topic votes (a *kafka.Reader with GroupID set).
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Counter applies votes to the counts (a *counts.Store).
type Counter interface {
	Applied(ctx context.Context, partition int) (int64, error)
	Apply(ctx context.Context, partition int, through int64, votes []counts.Vote) (counts.Result, error)
}

// LogWriter stores vote logs idempotently (a *votelog.Store).
type LogWriter interface {
	Insert(ctx context.Context, logs []votelog.Log) error
}

// DeadLetterWriter writes to the dead-letter topic and returns once the records are acknowledged
// (a *kafka.Writer for queue.DeadLetterTopic with RequiredAcks: kafka.RequireAll).
type DeadLetterWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Deps are what the loop reads from and writes to.
type Deps struct {
	In          Fetcher
	Counts      Counter
	Logs        LogWriter
	DeadLetters DeadLetterWriter
	Health      *Health
	Metrics     *Metrics
	Log         *slog.Logger
	// Now is the clock of the logs' counted_at; time.Now if nil.
	Now func() time.Time
}

// Names of the write targets, in metrics and health checks.
const (
	targetRedis  = "redis"
	targetMongo  = "mongo"
	targetDLQ    = "dlq"
	targetCommit = "commit"
	checkFetch   = "kafka fetch"
)

// Loop consumes topic votes; see the package documentation.
type Loop struct {
	cfg Config
	Deps

	lagMu sync.Mutex
	lag   map[int]*partitionLag
}

type partitionLag struct{ end, next int64 }

// New returns a loop; Run starts it.
func New(cfg Config, d Deps) *Loop {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Loop{cfg: cfg.withDefaults(), Deps: d, lag: map[int]*partitionLag{}}
}

// Run consumes until ctx is done, then finishes and commits the records already fetched (for up
// to DrainTimeout) and returns nil. The caller closes the reader afterwards, leaving the group.
func (l *Loop) Run(ctx context.Context) error {
	// Batches outlive ctx by up to DrainTimeout, so a SIGTERM finishes them.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(l.cfg.DrainTimeout, cancelWork) })
	defer stopDrain()

	var wg sync.WaitGroup
	workers := map[int]chan kafka.Message{}
	defer func() {
		for _, ch := range workers {
			close(ch)
		}
		wg.Wait()
	}()
	delay, failing := l.cfg.RetryMin, false
	for {
		m, err := l.In.FetchMessage(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("fetch: the reader was closed: %w", err)
			}
			failing = true
			l.Health.Set(checkFetch, err)
			l.Log.Warn("fetch failed; retrying", "err", err, "retry_in", delay)
			if !sleep(ctx, delay) {
				return nil
			}
			delay = min(2*delay, l.cfg.RetryMax)
			continue
		}
		if failing {
			failing, delay = false, l.cfg.RetryMin
			l.Health.Set(checkFetch, nil)
		}
		l.fetched(m)
		ch, ok := workers[m.Partition]
		if !ok {
			ch = make(chan kafka.Message, l.cfg.BatchSize)
			workers[m.Partition] = ch
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				l.partition(work, p, ch)
			}(m.Partition)
			l.Log.Info("consuming partition", "partition", m.Partition, "from_offset", m.Offset)
		}
		select {
		case ch <- m:
		case <-ctx.Done():
			return nil
		}
	}
}

// partition applies one partition's records in batches until in is closed and drained.
func (l *Loop) partition(ctx context.Context, p int, in <-chan kafka.Message) {
	for {
		batch, open := l.collect(in)
		if len(batch) > 0 {
			if err := l.process(ctx, p, batch); err != nil {
				l.Log.Warn("batch left unapplied and uncommitted; it will be replayed", "partition", p,
					"from_offset", batch[0].Offset, "to_offset", batch[len(batch)-1].Offset, "err", err)
				return
			}
		}
		if !open {
			return
		}
	}
}

// collect waits for a record, then takes more until the batch is full, BatchWait has passed or
// in is closed (open is false then).
func (l *Loop) collect(in <-chan kafka.Message) (batch []kafka.Message, open bool) {
	first, ok := <-in
	if !ok {
		return nil, false
	}
	batch = append(make([]kafka.Message, 0, l.cfg.BatchSize), first)
	timer := time.NewTimer(l.cfg.BatchWait)
	defer timer.Stop()
	for len(batch) < l.cfg.BatchSize {
		select {
		case m, ok := <-in:
			if !ok {
				return batch, false
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// process applies one batch of partition p's records, in offset order, and commits it. It fails
// only when ctx ends first, leaving the batch uncommitted.
func (l *Loop) process(ctx context.Context, p int, batch []kafka.Message) error {
	start := time.Now()
	last := batch[len(batch)-1]
	var applied int64
	err := l.retry(ctx, targetRedis, func(ctx context.Context) (err error) {
		applied, err = l.Counts.Applied(ctx, p)
		return err
	})
	if err != nil {
		return err
	}

	var (
		votes    []counts.Vote
		logs     []votelog.Log
		dead     []kafka.Message
		replayed int
	)
	logged := make(map[string]bool, len(batch))
	countedAt := l.Now().UTC()
	for _, m := range batch {
		if m.Offset <= applied { // applied before, so also logged or dead-lettered before
			replayed++
			continue
		}
		r, err := queue.Decode(m)
		if err != nil {
			reason := err.Error()
			var de *queue.DecodeError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			l.Log.Warn("record is not a vote; moving it to the dead-letter topic",
				"partition", p, "offset", m.Offset, "reason", reason)
			dead = append(dead, queue.DeadLetter(m, reason))
			continue
		}
		v := r.Vote
		votes = append(votes, counts.Vote{
			Offset: m.Offset, VoteID: v.GetVoteId(), Band: v.GetName(), Album: v.GetAlbum(), AcceptedAt: r.AcceptedAt(),
		})
		if !logged[v.GetVoteId()] { // the first record of a vote id is the one counted
			logged[v.GetVoteId()] = true
			logs = append(logs, votelog.Log{
				VoteID: v.GetVoteId(), Name: v.GetName(), Album: v.GetAlbum(), Year: v.GetYear(), Rank: v.GetRank(),
				Route: r.Route, AcceptedAt: r.AcceptedAt(), CountedAt: countedAt, Partition: p, Offset: m.Offset,
			})
		}
	}

	if len(dead) > 0 {
		if err := l.retry(ctx, targetDLQ, func(ctx context.Context) error { return l.DeadLetters.WriteMessages(ctx, dead...) }); err != nil {
			return err
		}
	}
	if len(logs) > 0 {
		if err := l.retry(ctx, targetMongo, func(ctx context.Context) error { return l.Logs.Insert(ctx, logs) }); err != nil {
			return err
		}
	}
	var res counts.Result
	if last.Offset > applied {
		err := l.retry(ctx, targetRedis, func(ctx context.Context) (err error) {
			res, err = l.Counts.Apply(ctx, p, last.Offset, votes)
			return err
		})
		if err != nil {
			return err
		}
	}
	res.Replayed += replayed
	l.Metrics.applySeconds.Observe(time.Since(start).Seconds())
	l.Metrics.batchRecords.Observe(float64(len(batch)))
	l.Metrics.processed.WithLabelValues(OutcomeCounted).Add(float64(res.Counted))
	l.Metrics.processed.WithLabelValues(OutcomeDuplicate).Add(float64(res.Duplicates))
	l.Metrics.processed.WithLabelValues(OutcomeReplayed).Add(float64(res.Replayed))
	l.Metrics.deadLettered.Add(float64(len(dead)))
	l.Log.Debug("batch applied", "partition", p, "from_offset", batch[0].Offset, "to_offset", last.Offset,
		"counted", res.Counted, "duplicates", res.Duplicates, "replayed", res.Replayed, "dead_lettered", len(dead),
		"took", time.Since(start))
	l.commit(ctx, p, last)
	return nil
}

// commit commits the partition up to and including last. A failed commit is not retried here:
// the batch is applied, the next batch's commit covers it, and a replay of it would be skipped.
func (l *Loop) commit(ctx context.Context, p int, last kafka.Message) {
	cctx, cancel := context.WithTimeout(ctx, l.cfg.AttemptTimeout)
	defer cancel()
	if err := l.In.CommitMessages(cctx, last); err != nil {
		l.Metrics.writeErrors.WithLabelValues(targetCommit).Inc()
		l.Log.Warn("commit failed; the batch is applied, so a replay of it changes nothing",
			"partition", p, "offset", last.Offset, "err", err)
		return
	}
	l.committed(p, last.Offset+1)
}

// retry runs op until it succeeds or ctx ends, backing off between attempts. While it fails, the
// target's health check fails too.
func (l *Loop) retry(ctx context.Context, target string, op func(context.Context) error) error {
	check := target + " writes"
	delay := l.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, l.cfg.AttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				l.Health.Set(check, nil)
				l.Log.Info("write succeeded again", "target", target, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %w)", target, ctx.Err(), err)
		}
		l.Metrics.writeErrors.WithLabelValues(target).Inc()
		l.Health.Set(check, err)
		if attempt == 1 || attempt%10 == 0 {
			l.Log.Warn("write failed; retrying", "target", target, "attempt", attempt, "err", err, "retry_in", delay)
		}
		if !sleep(ctx, delay) {
			return fmt.Errorf("%s: %w (last error: %w)", target, ctx.Err(), err)
		}
		delay = min(2*delay, l.cfg.RetryMax)
	}
}

// fetched and committed keep each partition's lag: its high watermark minus the next offset to
// commit (the first fetched offset until a commit says more).
func (l *Loop) fetched(m kafka.Message) {
	l.lagMu.Lock()
	pl, ok := l.lag[m.Partition]
	if !ok {
		pl = &partitionLag{next: m.Offset}
		l.lag[m.Partition] = pl
	}
	pl.end = max(pl.end, m.HighWaterMark)
	lag := pl.end - pl.next
	l.lagMu.Unlock()
	l.Metrics.setLag(m.Partition, lag)
}

func (l *Loop) committed(p int, next int64) {
	l.lagMu.Lock()
	pl := l.lag[p]
	pl.next = max(pl.next, next)
	lag := pl.end - pl.next
	l.lagMu.Unlock()
	l.Metrics.setLag(p, lag)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
