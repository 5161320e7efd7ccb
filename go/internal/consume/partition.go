package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// partition consumes partition p for one generation, from Redis's watermark + 1, until run or
// the generation ends; then it finishes the batch in hand (for up to DrainTimeout) and returns.
func (l *Loop) partition(run, genCtx context.Context, gen Generation, p int) {
	// stop derives from the generation's context, so its end reaches stop at once.
	stop, cancelStop := context.WithCancel(genCtx)
	defer cancelStop()
	defer context.AfterFunc(run, cancelStop)()
	// Writes outlive stop by up to DrainTimeout, so the batch in hand is finished and committed.
	work, cancelWork := context.WithCancel(context.WithoutCancel(stop))
	defer cancelWork()
	defer afterStop(stop, l.cfg.DrainTimeout, cancelWork)()

	var applied int64
	if err := l.retry(stop, targetRedis, func(ctx context.Context) (err error) {
		applied, err = l.Counts.Applied(ctx, p)
		return err
	}); err != nil {
		return
	}
	if l.Topic != nil {
		var err error
		if applied, err = l.Topic.Guard(stop, p, applied); err != nil {
			return
		}
	}
	for {
		from, err := l.firstOffset(stop, p, applied+1)
		if err != nil {
			return
		}
		next, rewind := l.read(stop, work, gen, p, from, applied)
		if !rewind {
			return
		}
		applied = next - 1
	}
}

// afterStop runs f d after stop ends, unless the returned release is called first; release
// also drops the timer (a partition's end must not leave one behind).
func afterStop(stop context.Context, d time.Duration, f func()) (release func()) {
	var (
		mu       sync.Mutex
		timer    *time.Timer
		released bool
	)
	unwatch := context.AfterFunc(stop, func() {
		mu.Lock()
		defer mu.Unlock()
		if !released {
			timer = time.AfterFunc(d, f)
		}
	})
	return func() {
		unwatch()
		mu.Lock()
		defer mu.Unlock()
		released = true
		if timer != nil {
			timer.Stop()
		}
	}
}

// firstOffset is from, or the partition's earliest offset if retention deleted the records from
// there on. Those are named lost with the batch (or idle check) that passes the watermark over
// them (lost), not here: a reader that stops before its first batch would name them again.
func (l *Loop) firstOffset(ctx context.Context, p int, from int64) (int64, error) {
	earliest, err := l.earliest(ctx, p)
	if err != nil {
		return 0, err
	}
	return max(from, earliest), nil
}

func (l *Loop) earliest(ctx context.Context, p int) (earliest int64, err error) {
	err = l.retry(ctx, targetKafka, func(ctx context.Context) (err error) {
		earliest, err = l.Partitions.Earliest(ctx, p)
		return err
	})
	return earliest, err
}

// span is the offsets from up to (not including) to.
type span struct{ from, to int64 }

// deleted lists the offsets between expected (the watermark this reader last saw or wrote) and
// the batch's records that the reader did not deliver because retention deleted them: kafka-go
// skips to the earliest offset when its position was deleted, and only logs it. Gaps that
// retention does not explain (offsets Kafka uses for no record) are not losses.
func (l *Loop) deleted(ctx context.Context, p int, expected int64, batch []Fetched) ([]span, error) {
	var gaps []span
	prev := expected
	for _, f := range batch {
		if f.Offset > prev+1 {
			gaps = append(gaps, span{prev + 1, f.Offset})
		}
		prev = max(prev, f.Offset)
	}
	if len(gaps) == 0 {
		return nil, nil
	}
	earliest, err := l.earliest(ctx, p)
	if err != nil {
		return nil, err
	}
	return clip(gaps, earliest), nil
}

// clip keeps the offsets of spans below earliest: those retention deleted.
func clip(spans []span, earliest int64) []span {
	var out []span
	for _, s := range spans {
		if to := min(s.to, earliest); to > s.from {
			out = append(out, span{s.from, to})
		}
	}
	return out
}

// lost names the records of spans lost: retention deleted them before this reader applied
// them, so they are in no count, and in the logs only if counted once before Redis went back in
// time (then the audit's -repair restores them). They are named before the watermark passes
// them, so a crash in between names them again rather than never; and relative to the watermark
// this reader last saw, so records another consumer applied meanwhile (its generation ended,
// not yet its batch) are named though counted. Without such a crash or a Redis going back, each
// lost record is named once.
func (l *Loop) lost(p int, spans []span) {
	for _, s := range spans {
		l.Metrics.retentionGap.Add(float64(s.to - s.from))
		l.Log.Error("records deleted by Kafka's retention before they were applied: the counts miss them",
			"partition", p, "from_offset", s.from, "to_offset", s.to-1, "missing_records", s.to-s.from)
	}
}

// read applies partition p's records from offset from (Redis's watermark applied + 1, or later
// if retention deleted those) in batches until stop ends (it finishes the batch fetched by then)
// or Redis is found behind what this reader applied: then it returns the offset to read again
// from and rewind true.
func (l *Loop) read(stop, work context.Context, gen Generation, p int, from, applied int64) (next int64, rewind bool) {
	l.Log.Info("consuming partition", "partition", p, "from_offset", from)
	reader := l.Partitions.Open(p, from)
	defer reader.Close()

	expected := applied // the watermark this reader last saw or wrote
	commits := &pacedCommits{l: l, gen: gen, p: p}
	defer commits.flush(work) // what was applied, before the partition goes
	for {
		var batch []Fetched
		if err := l.retry(stop, targetKafka, func(ctx context.Context) (err error) {
			batch, err = reader.Fetch(ctx, l.cfg.BatchSize, l.cfg.BatchWait, l.cfg.WatermarkCheck)
			return err
		}); err != nil {
			return 0, false
		}
		if len(batch) == 0 {
			// Idle for WatermarkCheck: has Redis gone back in time meanwhile?
			applied, err := l.Counts.Applied(work, p)
			if err == nil && applied < expected {
				l.behind(p, expected, applied)
				return applied + 1, true
			}
			// Or has retention deleted records this reader had yet to read? Then no record may
			// come to show the gap: pass them now.
			commits.flush(work)
			next, rewind, err := l.passDeleted(work, commits, p, expected)
			if err != nil {
				return 0, false
			}
			if rewind {
				return next, true
			}
			expected = max(expected, next-1)
			continue
		}
		l.fetched(p, batch)
		for _, f := range batch {
			if at, ok := queue.AcceptedAtHeader(f.Message); ok {
				l.Metrics.stageSeconds.WithLabelValues(StageDelivery).Observe(f.At.Sub(at).Seconds())
			}
		}
		gone, err := l.deleted(work, p, expected, batch)
		if err != nil {
			return 0, false
		}
		l.lost(p, gone)
		res, err := l.process(work, p, batch, expected)
		if err != nil {
			l.Log.Warn("batch left unapplied and uncommitted; it will be replayed", "partition", p,
				"from_offset", batch[0].Offset, "to_offset", batch[len(batch)-1].Offset, "err", err)
			return 0, false
		}
		if res.Behind {
			l.behind(p, expected, res.Applied)
			return res.Applied + 1, true
		}
		expected = max(expected, res.Applied)
		commits.applied(work, batch[len(batch)-1].Offset+1)
	}
}

// pacedCommits commits a partition's applied offsets at most once per CommitEvery, and what is
// left when the partition idles or its reader ends. A commit only reports progress (reading
// starts from Redis's watermark), and one per batch cost Kafka a request and a write for every
// batch of every partition, in each batch's path.
type pacedCommits struct {
	l    *Loop
	gen  Generation
	p    int
	next int64 // the next offset to commit; 0 when nothing is pending (a commit is past a record)
	last time.Time
}

// applied notes that the records before next are applied, and commits if one is due.
func (c *pacedCommits) applied(ctx context.Context, next int64) {
	c.next = next
	if time.Since(c.last) >= c.l.cfg.CommitEvery {
		c.flush(ctx)
	}
}

// flush commits what is pending now.
func (c *pacedCommits) flush(ctx context.Context) {
	if c.next == 0 {
		return
	}
	began := time.Now()
	c.l.commit(ctx, c.gen, c.p, c.next)
	c.l.Metrics.stageSeconds.WithLabelValues(StageCommit).Observe(time.Since(began).Seconds())
	c.next, c.last = 0, began
}

// passDeleted moves partition p's watermark past the records retention deleted after expected,
// and names them lost. It returns the next offset to apply, or rewind true and the offset to read
// again from if Redis is behind expected.
func (l *Loop) passDeleted(ctx context.Context, commits *pacedCommits, p int, expected int64) (next int64, rewind bool, err error) {
	earliest, err := l.earliest(ctx, p)
	if err != nil || earliest <= expected+1 {
		return expected + 1, false, err
	}
	l.lost(p, []span{{expected + 1, earliest}})
	var res counts.Result
	if err := l.retry(ctx, targetRedis, func(ctx context.Context) (err error) {
		res, err = l.Counts.Apply(ctx, p, expected, earliest-1, nil)
		return err
	}); err != nil {
		return 0, false, err
	}
	if res.Behind {
		l.behind(p, expected, res.Applied)
		return res.Applied + 1, true, nil
	}
	commits.applied(ctx, earliest)
	commits.flush(ctx)
	return res.Applied + 1, false, nil
}

// behind reports a Redis found with an older watermark than this consumer wrote.
func (l *Loop) behind(p int, expected, applied int64) {
	l.Metrics.rewinds.Inc()
	l.Log.Warn("Redis holds fewer applied records than this consumer wrote (it lost writes or was restored); replaying them from Kafka",
		"partition", p, "watermark_written", expected, "watermark_found", applied, "records_to_replay", expected-applied)
}

// process applies one batch of partition p's records, in offset order, unless Redis's watermark
// is below expected (Result.Behind): then nothing is counted. It fails only when ctx ends first,
// leaving the batch unapplied. The caller commits what it applied (pacedCommits).
func (l *Loop) process(ctx context.Context, p int, batch []Fetched, expected int64) (counts.Result, error) {
	start := time.Now()
	last := batch[len(batch)-1]
	queued := l.Metrics.stageSeconds.WithLabelValues(StageQueue)
	for _, f := range batch {
		queued.Observe(start.Sub(f.At).Seconds())
	}
	var (
		candidates []counts.Vote
		routes     []string // of candidates
		logs       []votelog.Log
		dead       []kafka.Message
		replayed   int // at or below the watermark
		duplicates int // not their vote's record
	)
	logged := make(map[string]int, len(batch)) // vote id → its index in logs
	var later []laterRecord                    // records of a vote id an earlier record of the batch has
	countedAt := l.Now().UTC()
	for _, f := range batch {
		m := f.Message
		if m.Offset <= expected { // applied before, so also logged or dead-lettered before
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
		log := votelog.Log{
			VoteID: v.GetVoteId(), Name: v.GetName(), Album: v.GetAlbum(), Year: v.GetYear(), Rank: v.GetRank(),
			Route: r.Route, AcceptedAt: r.AcceptedAt(), CountedAt: countedAt, Partition: p, Offset: m.Offset,
		}
		if i, ok := logged[v.GetVoteId()]; ok { // an earlier record of this batch has the id: never this one's vote
			duplicates++
			later = append(later, laterRecord{log, i})
			continue
		}
		logged[v.GetVoteId()] = len(logs)
		candidates = append(candidates, counts.Vote{Offset: m.Offset, Band: v.GetName(), Album: v.GetAlbum(), AcceptedAt: r.AcceptedAt()})
		routes = append(routes, r.Route)
		logs = append(logs, log)
	}

	if len(dead) > 0 {
		if err := l.retry(ctx, targetDLQ, func(ctx context.Context) error { return l.DeadLetters.WriteMessages(ctx, dead...) }); err != nil {
			return counts.Result{}, err
		}
	}
	var (
		votes      []counts.Vote
		voteRoutes []string
	)
	if len(logs) > 0 {
		var stored []votelog.Log
		began := time.Now()
		if err := l.retry(ctx, targetMongo, func(ctx context.Context) (err error) {
			stored, err = l.Logs.Insert(ctx, logs)
			return err
		}); err != nil {
			return counts.Result{}, err
		}
		l.Metrics.stageSeconds.WithLabelValues(StageMongo).Observe(time.Since(began).Seconds())
		if len(stored) != len(logs) {
			return counts.Result{}, fmt.Errorf("logs: %d answers for %d logs", len(stored), len(logs))
		}
		votes = make([]counts.Vote, 0, len(candidates))
		for i, c := range candidates {
			if votelog.Own(logs[i], stored[i]) {
				votes = append(votes, c)
				voteRoutes = append(voteRoutes, routes[i])
			} else {
				duplicates++
				l.conflict(logs[i], stored[i])
			}
		}
		for _, r := range later {
			l.conflict(r.log, stored[r.first])
		}
	}
	var res counts.Result
	began := time.Now()
	if err := l.retry(ctx, targetRedis, func(ctx context.Context) (err error) {
		res, err = l.Counts.Apply(ctx, p, expected, last.Offset, votes)
		return err
	}); err != nil {
		return counts.Result{}, err
	}
	if res.Behind {
		return res, nil
	}
	applied := time.Now()
	l.Metrics.stageSeconds.WithLabelValues(StageRedis).Observe(applied.Sub(began).Seconds())
	if res.Replayed == 0 { // else some of votes were counted before, and their time is not this one
		for i, v := range votes {
			l.Metrics.acceptToCounted.WithLabelValues(voteRoutes[i]).Observe(applied.Sub(v.AcceptedAt).Seconds())
		}
	}
	replayed += res.Replayed
	l.Metrics.applySeconds.Observe(time.Since(start).Seconds())
	l.Metrics.batchRecords.Observe(float64(len(batch)))
	l.Metrics.processed.WithLabelValues(OutcomeCounted).Add(float64(res.Counted))
	l.Metrics.processed.WithLabelValues(OutcomeDuplicate).Add(float64(duplicates))
	l.Metrics.processed.WithLabelValues(OutcomeReplayed).Add(float64(replayed))
	l.Metrics.deadLettered.Add(float64(len(dead)))
	l.Log.Debug("batch applied", "partition", p, "from_offset", batch[0].Offset, "to_offset", last.Offset,
		"counted", res.Counted, "duplicates", duplicates, "replayed", replayed, "dead_lettered", len(dead),
		"took", time.Since(start))
	return res, nil
}

// laterRecord is a record of a batch whose vote id an earlier record of the batch (first, an
// index of its logs) has.
type laterRecord struct {
	log   votelog.Log
	first int
}

// conflict reports a record whose vote id is counted for another vote: the same
// Idempotency-Key sent with another body (another client's key, or a client's bug). The record
// is not counted, like any later record of a vote id, but it is not a harmless retry either.
func (l *Loop) conflict(record, counted votelog.Log) {
	if votelog.SameVote(record, counted) {
		return
	}
	l.Metrics.keyConflicts.Inc()
	l.Log.Warn("a vote id (Idempotency-Key) came again with another vote: only the vote first counted for it counts",
		"vote_id", record.VoteID, "partition", record.Partition, "offset", record.Offset,
		"name", record.Name, "album", record.Album, "year", record.Year, "rank", record.Rank,
		"counted_partition", counted.Partition, "counted_offset", counted.Offset,
		"counted_name", counted.Name, "counted_album", counted.Album, "counted_year", counted.Year, "counted_rank", counted.Rank)
}

// commit commits the partition up to next. A failed commit is not retried here: the records are
// applied, the next commit covers them, and reading starts from Redis's watermark anyway.
func (l *Loop) commit(ctx context.Context, gen Generation, p int, next int64) {
	cctx, cancel := context.WithTimeout(ctx, l.cfg.AttemptTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gen.Commit(p, next) }()
	var err error
	select {
	case err = <-done:
	case <-cctx.Done():
		err = cctx.Err()
	}
	if err != nil {
		l.Metrics.writeErrors.WithLabelValues(targetCommit).Inc()
		l.Log.Warn("commit failed; the batch is applied, so a replay of it changes nothing",
			"partition", p, "next_offset", next, "err", err)
		return
	}
	l.committed(p, next)
}

// retry runs op until it succeeds or ctx ends, backing off between attempts. While it fails, the
// target's health check fails too (failing).
func (l *Loop) retry(ctx context.Context, target string, op func(context.Context) error) error {
	delay := l.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, l.cfg.AttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				l.failing(target, -1, nil)
				l.Log.Info("write succeeded again", "target", target, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			if attempt > 1 {
				l.failing(target, -1, nil)
			}
			return fmt.Errorf("%s: %w (last error: %w)", target, ctx.Err(), err)
		}
		l.Metrics.writeErrors.WithLabelValues(target).Inc()
		joins := 0
		if attempt == 1 {
			joins = 1
		}
		l.failing(target, joins, err)
		if attempt == 1 || attempt%10 == 0 {
			l.Log.Warn("write failed; retrying", "target", target, "attempt", attempt, "err", err, "retry_in", delay)
		}
		if !sleep(ctx, delay) {
			l.failing(target, -1, nil)
			return fmt.Errorf("%s: %w (last error: %w)", target, ctx.Err(), err)
		}
		delay = min(2*delay, l.cfg.RetryMax)
	}
}

// failing keeps target's health check ("<target> writes") failing while any retry of it is
// between a failed attempt and its end: a retry joins (delta 1) with its first failure, reports
// each later one (delta 0, err), and leaves (delta -1) when it succeeds or its context ends (a
// generation's end cuts it short; the partition's next reader retries afresh). Partitions share
// the check, so one getting through does not clear another's failure.
func (l *Loop) failing(target string, delta int, err error) {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	l.failures[target] += delta
	switch {
	case l.failures[target] <= 0:
		delete(l.failures, target)
		l.Health.Set(target+" writes", nil)
	case err != nil:
		l.Health.Set(target+" writes", err)
	}
}

// fetched and committed keep each partition's lag: its high watermark minus the next offset to
// commit (the first fetched offset until a commit says more).
func (l *Loop) fetched(p int, batch []Fetched) {
	l.lagMu.Lock()
	pl, ok := l.lag[p]
	if !ok {
		pl = &partitionLag{next: batch[0].Offset}
		l.lag[p] = pl
	}
	for _, m := range batch {
		pl.end = max(pl.end, m.HighWaterMark)
	}
	lag := pl.end - pl.next
	l.lagMu.Unlock()
	l.Metrics.setLag(p, lag)
}

func (l *Loop) committed(p int, next int64) {
	l.lagMu.Lock()
	pl, ok := l.lag[p]
	if !ok {
		pl = &partitionLag{end: next}
		l.lag[p] = pl
	}
	pl.next = next
	lag := pl.end - pl.next
	l.lagMu.Unlock()
	l.Metrics.setLag(p, lag)
}
