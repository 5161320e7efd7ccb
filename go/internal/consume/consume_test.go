package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/readiness"
	"github.com/tally-voting/tally/go/internal/votelog"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// The fakes below stand in for Kafka, Redis and MongoDB around the loop; the real servers are
// exercised by go/test/consumer.

// journal records every write, in order, as "target partition:offsets".
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// fakeKafka is the group (one generation holding every partition it has records for) and the
// partitions' logs, which grow as the test appends.
type fakeKafka struct {
	j        *journal
	mu       sync.Mutex
	logs     map[int][]kafka.Message
	earliest map[int]int64
	opened   []string
	grew     chan struct{} // closed and replaced on every append
	commits  chan [2]int64
	gen      *fakeGen
	parts    []int
}

func (k *fakeKafka) add(msgs ...kafka.Message) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range msgs {
		k.logs[m.Partition] = append(k.logs[m.Partition], m)
	}
	close(k.grew)
	k.grew = make(chan struct{})
}

// Next hands out a generation, then blocks until it ends (rebalance) and its functions have
// returned, as kafka-go's does, and hands out the next.
func (k *fakeKafka) Next(ctx context.Context) (Generation, error) {
	k.mu.Lock()
	prev := k.gen
	k.mu.Unlock()
	if prev != nil {
		select {
		case <-prev.done:
			prev.wg.Wait()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case <-prev.next:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen = &fakeGen{k: k, parts: k.parts, done: make(chan struct{}), next: make(chan struct{})}
	return k.gen, nil
}

// rebalance ends the current generation (as a broker outage does), waits for its functions, runs
// between, and lets the next generation start.
func (k *fakeKafka) rebalance(between func()) {
	k.mu.Lock()
	gen := k.gen
	k.mu.Unlock()
	gen.leave()
	between()
	close(gen.next)
}

func (k *fakeKafka) Open(p int, offset int64) PartitionReader {
	k.j.add("open %d:%d", p, offset)
	return &fakeReader{k: k, p: p, next: offset}
}

func (k *fakeKafka) Earliest(_ context.Context, p int) (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.earliest[p], nil
}

type fakeReader struct {
	k    *fakeKafka
	p    int
	next int64
}

func (r *fakeReader) Fetch(ctx context.Context, most int, _, idle time.Duration) ([]Fetched, error) {
	idleTimer := time.NewTimer(idle)
	defer idleTimer.Stop()
	for {
		r.k.mu.Lock()
		grew := r.k.grew
		// As kafka-go does: a position that retention deleted skips to the earliest offset.
		r.next = max(r.next, r.k.earliest[r.p])
		var batch []Fetched
		for _, m := range r.k.logs[r.p] {
			if m.Offset >= r.next && len(batch) < most {
				batch = append(batch, Fetched{m, time.Now()})
			}
		}
		r.k.mu.Unlock()
		if len(batch) > 0 {
			r.next = batch[len(batch)-1].Offset + 1
			return batch, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-grew:
		case <-idleTimer.C:
			return nil, nil
		}
	}
}

func (r *fakeReader) Close() error { return nil }

// fakeGen is a generation: leave ends it and waits for its functions, as kafka-go's does.
type fakeGen struct {
	k     *fakeKafka
	parts []int
	wg    sync.WaitGroup
	once  sync.Once
	done  chan struct{}
	next  chan struct{} // closed when the next generation may start (rebalance)
}

func (g *fakeGen) Partitions() []int { return g.parts }

func (g *fakeGen) Start(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-g.done; cancel() }()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(ctx)
	}()
}

func (g *fakeGen) Commit(p int, next int64) error {
	g.k.j.add("commit %d:%d", p, next-1)
	g.k.commits <- [2]int64{int64(p), next - 1}
	return nil
}

func (g *fakeGen) leave() {
	g.once.Do(func() { close(g.done) })
	g.wg.Wait()
}

// fakeCounter has the semantics of counts.Store: a watermark per partition, Behind when it is
// below the caller's.
type fakeCounter struct {
	mu        sync.Mutex
	j         *journal
	watermark map[int]int64
	total     int
	failApply int           // fail this many Apply calls first
	block     chan struct{} // if set, Apply waits for it
	entered   chan struct{} // if set, Apply sends to it on entry
	stuck     int           // Apply of this partition always fails (-1: none)
}

func (c *fakeCounter) Applied(_ context.Context, p int) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.watermark[p]; ok {
		return w, nil
	}
	return -1, nil
}

func (c *fakeCounter) Apply(ctx context.Context, p int, expected, through int64, votes []counts.Vote) (counts.Result, error) {
	if c.entered != nil {
		c.entered <- struct{}{}
	}
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p == c.stuck || c.failApply > 0 {
		if p != c.stuck {
			c.failApply--
		}
		c.j.add("redis-failed %d", p)
		return counts.Result{}, errors.New("connection refused")
	}
	w, ok := c.watermark[p]
	if !ok {
		w = -1
	}
	if w < expected {
		c.j.add("redis-behind %d: %d < %d", p, w, expected)
		return counts.Result{Behind: true, Applied: w}, nil
	}
	var r counts.Result
	var offsets []string
	for _, v := range votes {
		offsets = append(offsets, fmt.Sprint(v.Offset))
		if v.Offset <= w {
			r.Replayed++
			continue
		}
		c.total++
		r.Counted++
	}
	c.watermark[p] = max(w, through)
	r.Applied = c.watermark[p]
	c.j.add("redis %d:%s through %d", p, strings.Join(offsets, ","), through)
	return r, nil
}

// fakeLogs keeps the first log of each vote id, as votelog.Store does.
type fakeLogs struct {
	j    *journal
	mu   sync.Mutex
	docs map[string]votelog.Log
}

func (f *fakeLogs) Insert(_ context.Context, logs []votelog.Log) ([]votelog.Log, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	stored := make([]votelog.Log, len(logs))
	for i, l := range logs {
		ids = append(ids, fmt.Sprintf("%d:%d", l.Partition, l.Offset))
		s, ok := f.docs[l.VoteID]
		if !ok {
			f.docs[l.VoteID] = l
			s = l
		}
		stored[i] = s
	}
	f.j.add("mongo %s", strings.Join(ids, ","))
	return stored, nil
}

type fakeDLQ struct {
	j    *journal
	mu   sync.Mutex
	msgs []kafka.Message
}

func (f *fakeDLQ) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msgs...)
	for _, m := range msgs {
		f.j.add("dlq %s:%s", queue.Header(m, queue.HeaderDeadPartition), queue.Header(m, queue.HeaderDeadOffset))
	}
	return nil
}

type rig struct {
	j       *journal
	kafka   *fakeKafka
	counter *fakeCounter
	logs    *fakeLogs
	dlq     *fakeDLQ
	health  *readiness.Checks
	reg     *prometheus.Registry
	loop    *Loop
}

// metric is the value of a counter without labels.
func (r *rig) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// observations is how many values histogram name holds for the label value.
func (r *rig) observations(t *testing.T, name, label string) uint64 {
	t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == label {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no histogram %s{%s}", name, label)
	return 0
}

// newRig returns a loop whose group assigns it partitions.
func newRig(cfg Config, partitions ...int) *rig {
	j := &journal{}
	r := &rig{
		j: j,
		kafka: &fakeKafka{j: j, logs: map[int][]kafka.Message{}, earliest: map[int]int64{}, grew: make(chan struct{}),
			commits: make(chan [2]int64, 100), parts: partitions},
		counter: &fakeCounter{j: j, watermark: map[int]int64{}, stuck: -1},
		logs:    &fakeLogs{j: j, docs: map[string]votelog.Log{}},
		dlq:     &fakeDLQ{j: j},
		health:  readiness.New(),
		reg:     prometheus.NewRegistry(),
	}
	r.loop = New(cfg, Deps{
		Group: r.kafka, Partitions: r.kafka, Counts: r.counter, Logs: r.logs, DeadLetters: r.dlq, Health: r.health,
		Metrics: NewMetrics(r.reg), Log: slog.New(slog.DiscardHandler),
	})
	return r
}

func voteMsg(t *testing.T, p int, offset int64, id string) kafka.Message {
	t.Helper()
	m, err := queue.Encode(queue.Record{Route: queue.RouteGRPC, Vote: &votev1.Vote{
		Name: "Alux Nahual", Album: "Hijos del Sol", Year: 1987, Rank: 1, VoteId: id, AcceptedAtUnixMs: 1795460000123,
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.Topic, m.Partition, m.Offset, m.HighWaterMark = queue.VotesTopic, p, offset, offset+1
	return m
}

// otherVoteMsg is a record of vote id id with another album than voteMsg's.
func otherVoteMsg(t *testing.T, p int, offset int64, id string) kafka.Message {
	t.Helper()
	m, err := queue.Encode(queue.Record{Route: queue.RouteWasm, Vote: &votev1.Vote{
		Name: "Alux Nahual", Album: "Leyenda", Year: 1987, Rank: 1, VoteId: id, AcceptedAtUnixMs: 1795460000123,
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.Topic, m.Partition, m.Offset, m.HighWaterMark = queue.VotesTopic, p, offset, offset+1
	return m
}

func poisonMsg(p int, offset int64) kafka.Message {
	return kafka.Message{Topic: queue.VotesTopic, Partition: p, Offset: offset, Key: []byte("x"), Value: []byte("not a vote")}
}

// waitCommit waits for a commit of partition p through offset.
func (r *rig) waitCommit(t *testing.T, p int, offset int64) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case c := <-r.kafka.commits:
			if c[0] == int64(p) && c[1] == offset {
				return
			}
		case <-timeout:
			t.Fatalf("no commit of %d:%d; journal %q", p, offset, r.j.list())
		}
	}
}

// running is a started loop.
type running struct {
	t      *testing.T
	r      *rig
	cancel context.CancelFunc
	done   chan error
}

// run starts the loop.
func run(t *testing.T, r *rig) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	t.Cleanup(cancel)
	return &running{t: t, r: r, cancel: cancel, done: done}
}

// signal ends Run's context, as SIGTERM does, and waits for Run to return.
func (x *running) signal() error {
	x.t.Helper()
	x.cancel()
	select {
	case err := <-x.done:
		return err
	case <-time.After(10 * time.Second):
		x.t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// leave leaves the group as main does, which waits for the partitions' batches in hand.
func (x *running) leave() {
	x.r.kafka.mu.Lock()
	gen := x.r.kafka.gen
	x.r.kafka.mu.Unlock()
	if gen != nil {
		gen.leave()
	}
}

// stop is signal then leave.
func (x *running) stop() error {
	err := x.signal()
	x.leave()
	return err
}

// waitJournal waits until the journal holds entry.
func (r *rig) waitJournal(t *testing.T, entry string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(r.j.list(), entry) {
		if time.Now().After(deadline) {
			t.Fatalf("the journal never held %q: %q", entry, r.j.list())
		}
		time.Sleep(time.Millisecond)
	}
}

// writes is the journal without the readers' opens.
func (r *rig) writes() []string {
	return slices.DeleteFunc(r.j.list(), func(e string) bool { return strings.HasPrefix(e, "open ") })
}

// A batch is written in the one order that makes a crash anywhere safe: dead letters, logs,
// counts, commit. A vote id's second record is logged as a candidate only if no earlier record
// of the batch has the id, and counted only if its log is the stored one.
func TestBatchWritesInOrderThenCommits(t *testing.T) {
	r := newRig(Config{BatchSize: 4, BatchWait: time.Second}, 0)
	r.kafka.add(voteMsg(t, 0, 0, "a"), poisonMsg(0, 1), voteMsg(t, 0, 2, "b"), voteMsg(t, 0, 3, "a"))
	x := run(t, r)
	r.waitCommit(t, 0, 3)
	want := []string{"dlq 0:1", "mongo 0:0,0:2", "redis 0:0,2 through 3", "commit 0:3"}
	if got := r.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if r.counter.total != 2 {
		t.Fatalf("counted %d votes, want 2 (a twice is one vote)", r.counter.total)
	}
	if l := r.logs.docs["a"]; l.Offset != 0 || l.Route != queue.RouteGRPC || l.CountedAt.IsZero() {
		t.Fatalf("log of a = %+v, want the first record's", l)
	}
	d := r.dlq.msgs[0]
	if queue.Header(d, queue.HeaderDeadReason) == "" || queue.Header(d, queue.HeaderDeadTopic) != queue.VotesTopic {
		t.Fatalf("dead letter headers = %v", d.Headers)
	}
}

// Every record's delivery and queue time, every batch's stages and every counted vote's accept
// to count are observed, so /metrics says where a vote's time went.
func TestStagesAreTimed(t *testing.T) {
	r := newRig(Config{BatchSize: 4, BatchWait: time.Second}, 0)
	r.kafka.add(voteMsg(t, 0, 0, "a"), poisonMsg(0, 1), voteMsg(t, 0, 2, "b"), voteMsg(t, 0, 3, "a"))
	x := run(t, r)
	r.waitCommit(t, 0, 3)
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	for _, c := range []struct {
		name, label string
		want        uint64
	}{
		{"tally_consumer_stage_seconds", StageDelivery, 3}, // the poison record has no accept time
		{"tally_consumer_stage_seconds", StageQueue, 4},
		{"tally_consumer_stage_seconds", StageMongo, 1},
		{"tally_consumer_stage_seconds", StageRedis, 1},
		{"tally_consumer_stage_seconds", StageCommit, 1},
		{"tally_consumer_accept_to_counted_seconds", queue.RouteGRPC, 2},
		{"tally_consumer_accept_to_counted_seconds", queue.RouteWasm, 0},
	} {
		if got := r.observations(t, c.name, c.label); got != c.want {
			t.Errorf("%s{%s}: %d observations, want %d", c.name, c.label, got, c.want)
		}
	}
}

// A vote id sent again later (a producer retry, the same Idempotency-Key to either route) lands
// in another batch: its log is not the stored one, so it is not counted.
func TestLaterRecordOfAVoteIDIsNotCounted(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond}, 1)
	r.kafka.add(voteMsg(t, 1, 0, "a"), voteMsg(t, 1, 1, "a"))
	x := run(t, r)
	r.waitCommit(t, 1, 1)
	x.stop()
	want := []string{"mongo 1:0", "redis 1:0 through 0", "commit 1:0", "mongo 1:1", "redis 1: through 1", "commit 1:1"}
	if got := r.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	if r.counter.total != 1 {
		t.Fatalf("counted %d, want 1", r.counter.total)
	}
}

// The same vote id with another vote (an Idempotency-Key reused for another body), in a later
// batch and within one batch, is not counted, like any repeat, and is counted as a conflict; the
// same vote again is not.
func TestReusedKeyWithAnotherVoteIsAConflict(t *testing.T) {
	r := newRig(Config{BatchSize: 3, BatchWait: time.Second}, 0)
	r.kafka.add(voteMsg(t, 0, 0, "a"), voteMsg(t, 0, 1, "b"), otherVoteMsg(t, 0, 2, "b"))
	x := run(t, r)
	r.waitCommit(t, 0, 2)
	r.kafka.add(otherVoteMsg(t, 0, 3, "a"), voteMsg(t, 0, 4, "a"), voteMsg(t, 0, 5, "c"))
	r.waitCommit(t, 0, 5)
	x.stop()
	if r.counter.total != 3 {
		t.Fatalf("counted %d, want 3 (a, b, c)", r.counter.total)
	}
	if got := r.metric(t, "tally_consumer_key_conflicts_total"); got != 2 {
		t.Fatalf("key conflicts = %v, want 2 (b within a batch, a in a later one)", got)
	}
	if l := r.logs.docs["a"]; l.Album != "Hijos del Sol" || l.Offset != 0 {
		t.Fatalf("log of a = %+v, want the first vote's", l)
	}
}

// Reading starts at Redis's watermark + 1, whatever the group committed; records at or below it
// are never seen again.
func TestReadingStartsAtTheWatermark(t *testing.T) {
	r := newRig(Config{BatchSize: 4, BatchWait: time.Second}, 2)
	r.counter.watermark[2] = 11
	r.kafka.add(poisonMsg(2, 10), voteMsg(t, 2, 11, "a"), voteMsg(t, 2, 12, "b"), poisonMsg(2, 13))
	x := run(t, r)
	r.waitCommit(t, 2, 13)
	x.stop()
	want := []string{"open 2:12", "dlq 2:13", "mongo 2:12", "redis 2:12 through 13", "commit 2:13"}
	if got := r.j.list(); !slices.Equal(got, want) {
		t.Fatalf("journal = %q, want %q", got, want)
	}
}

// Redis loses applied batches while the partition is idle: the idle check notices, the partition
// is read again from Redis's watermark, and the lost votes are counted again, exactly once.
func TestRedisBehindIsReplayed(t *testing.T) {
	r := newRig(Config{BatchSize: 2, BatchWait: time.Millisecond, WatermarkCheck: 20 * time.Millisecond}, 3)
	r.kafka.add(voteMsg(t, 3, 0, "a"), voteMsg(t, 3, 1, "b"), voteMsg(t, 3, 2, "c"), voteMsg(t, 3, 3, "a"))
	x := run(t, r)
	r.waitCommit(t, 3, 3)
	// Redis comes back with only the first batch applied.
	r.counter.mu.Lock()
	r.counter.watermark[3], r.counter.total = 1, 2
	r.counter.mu.Unlock()
	r.waitCommit(t, 3, 3)
	x.stop()
	if r.counter.total != 3 {
		t.Fatalf("counted %d after the replay, want 3", r.counter.total)
	}
	if got := r.metric(t, "tally_consumer_rewinds_total"); got != 1 {
		t.Fatalf("rewinds = %v, want 1", got)
	}
	if !slices.Contains(r.j.list(), "open 3:2") {
		t.Fatalf("the partition was not read again from offset 2: %q", r.j.list())
	}
}

// The same with records arriving: the apply itself finds Redis behind, counts nothing, commits
// nothing, and the partition is read again.
func TestApplyFindingRedisBehindReplays(t *testing.T) {
	r := newRig(Config{BatchSize: 2, BatchWait: time.Millisecond, WatermarkCheck: time.Hour, CommitEvery: time.Nanosecond}, 4)
	r.kafka.add(voteMsg(t, 4, 0, "a"), voteMsg(t, 4, 1, "b"))
	x := run(t, r)
	r.waitCommit(t, 4, 1)
	r.counter.mu.Lock()
	delete(r.counter.watermark, 4) // Redis lost everything
	r.counter.total = 0
	r.counter.mu.Unlock()
	r.kafka.add(voteMsg(t, 4, 2, "c"), voteMsg(t, 4, 3, "d"))
	r.waitCommit(t, 4, 3)
	x.stop()
	if r.counter.total != 4 {
		t.Fatalf("counted %d after the replay, want 4", r.counter.total)
	}
	if !slices.Contains(r.j.list(), "redis-behind 4: -1 < 1") || !slices.Contains(r.j.list(), "open 4:0") {
		t.Fatalf("journal = %q, want Redis found behind and the partition read from 0", r.j.list())
	}
}

// Redis's watermark is below what Kafka still holds: reading starts at the earliest offset,
// and the gap is counted in a metric for the audit to repair.
func TestRetentionPassedStartsAtTheEarliest(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond}, 5)
	r.kafka.earliest[5] = 3
	r.kafka.add(voteMsg(t, 5, 3, "a"))
	x := run(t, r)
	r.waitCommit(t, 5, 3)
	x.stop()
	if got := r.metric(t, "tally_consumer_retention_lost_records_total"); got != 3 {
		t.Fatalf("retention gap = %v, want 3", got)
	}
	if got := r.j.list()[0]; got != "open 5:3" {
		t.Fatalf("first = %q, want open 5:3", got)
	}
}

// Retention deletes records of a partition being read before the reader got to them: kafka-go
// skips to the earliest offset, and the loop names the skipped records lost, exactly, once the
// batch after them is applied.
func TestRetentionWhileReadingIsNamed(t *testing.T) {
	r := newRig(Config{BatchSize: 10, BatchWait: time.Millisecond}, 5)
	r.kafka.add(voteMsg(t, 5, 0, "a"), voteMsg(t, 5, 1, "b"))
	x := run(t, r)
	r.waitCommit(t, 5, 1)
	r.kafka.mu.Lock()
	r.kafka.earliest[5] = 5 // 2 to 4 are deleted before they are read
	r.kafka.mu.Unlock()
	r.kafka.add(voteMsg(t, 5, 2, "c"), voteMsg(t, 5, 3, "d"), voteMsg(t, 5, 4, "e"), voteMsg(t, 5, 5, "f"), voteMsg(t, 5, 6, "g"))
	r.waitCommit(t, 5, 6)
	x.stop()
	if got := r.metric(t, "tally_consumer_retention_lost_records_total"); got != 3 {
		t.Fatalf("retention loss = %v, want 3 (offsets 2 to 4)", got)
	}
	if r.counter.total != 4 {
		t.Fatalf("counted %d, want 4", r.counter.total)
	}
}

// The records retention deleted are the last of an idle partition: no record comes after them to
// show the gap, so the idle check passes the watermark over them and names them.
func TestRetentionOfAnIdlePartitionIsNamed(t *testing.T) {
	r := newRig(Config{BatchSize: 10, BatchWait: time.Millisecond, WatermarkCheck: 10 * time.Millisecond}, 2)
	r.counter.watermark[2] = 1
	r.kafka.earliest[2] = 4
	x := run(t, r)
	r.waitCommit(t, 2, 3)
	x.stop()
	if got := r.metric(t, "tally_consumer_retention_lost_records_total"); got != 2 {
		t.Fatalf("retention loss = %v, want 2 (offsets 2 and 3)", got)
	}
	if w, _ := r.counter.Applied(context.Background(), 2); w != 3 {
		t.Fatalf("watermark = %d, want 3", w)
	}
}

// A failing Redis is retried; meanwhile the consumer is not ready and commits nothing.
func TestFailingWritesAreRetriedAndBlockTheCommit(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond}, 1)
	r.counter.failApply = 5
	r.kafka.add(voteMsg(t, 1, 0, "a"))
	x := run(t, r)
	deadline := time.Now().Add(5 * time.Second)
	for r.health.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("health never reported the failing writes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.health.Err(); !strings.Contains(err.Error(), "redis") {
		t.Fatalf("health = %v, want it to name redis", err)
	}
	r.waitCommit(t, 1, 0)
	if err := r.health.Err(); err != nil {
		t.Fatalf("health after recovery = %v", err)
	}
	want := []string{"mongo 1:0", "redis-failed 1", "redis-failed 1", "redis-failed 1", "redis-failed 1",
		"redis-failed 1", "redis 1:0 through 0", "commit 1:0"}
	if got := r.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	x.stop()
}

// Commits are paced: batches applied within CommitEvery of the last commit are committed together,
// with the first batch after it, when the partition idles, or when it stops.
func TestCommitsArePaced(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, CommitEvery: time.Hour, WatermarkCheck: time.Hour}, 2)
	r.kafka.add(voteMsg(t, 2, 0, "a"), voteMsg(t, 2, 1, "b"), voteMsg(t, 2, 2, "c"))
	x := run(t, r)
	r.waitCommit(t, 2, 0) // the first batch: no commit for an hour before it
	r.waitJournal(t, "redis 2:2 through 2")
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	want := []string{"mongo 2:0", "redis 2:0 through 0", "commit 2:0", "mongo 2:1", "redis 2:1 through 1",
		"mongo 2:2", "redis 2:2 through 2", "commit 2:2"}
	if got := r.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}

	r = newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, CommitEvery: time.Hour, WatermarkCheck: 20 * time.Millisecond}, 2)
	r.kafka.add(voteMsg(t, 2, 0, "a"), voteMsg(t, 2, 1, "b"))
	x = run(t, r)
	r.waitCommit(t, 2, 0)
	r.waitCommit(t, 2, 1) // when the partition idles
	x.stop()
}

// A retry that a generation's end cuts short (a Kafka outage moves the partitions) must not leave
// its write check failing: the next generation's writes succeed at their first attempt, and
// nothing would clear it.
func TestRetryCutShortLeavesNoFailingCheck(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 10 * time.Millisecond, DrainTimeout: 50 * time.Millisecond}, 0)
	r.counter.mu.Lock()
	r.counter.failApply = 1 << 30
	r.counter.mu.Unlock()
	r.kafka.add(voteMsg(t, 0, 0, "a"))
	x := run(t, r)
	r.waitJournal(t, "redis-failed 0")
	if err := r.health.Err(); err == nil || !strings.Contains(err.Error(), "redis writes") {
		t.Fatalf("health while Redis fails = %v, want redis writes failing", err)
	}
	// The retry ends with its generation, the batch unapplied; Redis is back before the next.
	r.kafka.rebalance(func() {
		r.counter.mu.Lock()
		r.counter.failApply = 0
		r.counter.mu.Unlock()
	})
	r.waitCommit(t, 0, 0)
	got := r.j.list()
	if again := got[slices.Index(got[1:], "open 0:0")+1:]; !slices.Equal(again, []string{"open 0:0", "mongo 0:0", "redis 0:0 through 0", "commit 0:0"}) {
		t.Fatalf("the next generation's writes = %q, want them applied at the first attempt", again)
	}
	if err := r.health.Err(); err != nil {
		t.Fatalf("health after the batch was applied = %v, want ready", err)
	}
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// Two partitions failing on one target: the check clears only when neither fails any more, not
// when one of them gets through.
func TestCheckFailsWhileAnyRetryFails(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 200 * time.Millisecond,
		RetryMax: 200 * time.Millisecond, DrainTimeout: 100 * time.Millisecond}, 3, 4)
	r.counter.stuck = 3
	r.kafka.add(voteMsg(t, 3, 0, "a"))
	x := run(t, r)
	r.waitJournal(t, "redis-failed 3")
	// Partition 4 fails once, half a backoff after partition 3, and gets through at its second
	// attempt, while partition 3 waits for its next.
	time.Sleep(100 * time.Millisecond)
	r.counter.mu.Lock()
	r.counter.failApply = 1
	r.counter.mu.Unlock()
	r.kafka.add(voteMsg(t, 4, 0, "b"))
	r.waitCommit(t, 4, 0)
	if err := r.health.Err(); err == nil || !strings.Contains(err.Error(), "redis writes") {
		t.Fatalf("health with partition 3 still failing = %v, want redis writes failing", err)
	}
	x.stop()
}

// Partitions are applied concurrently: one stuck partition does not hold up another.
func TestPartitionsProceedIndependently(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 10 * time.Millisecond, DrainTimeout: 100 * time.Millisecond}, 3, 4)
	r.counter.stuck = 3
	r.kafka.add(voteMsg(t, 3, 0, "a"), voteMsg(t, 4, 0, "b"))
	x := run(t, r)
	r.waitCommit(t, 4, 0)
	if slices.Contains(r.j.list(), "commit 3:0") {
		t.Fatal("the stuck partition was committed")
	}
	x.stop()
}

// On shutdown the batch in hand is finished and committed before the group is left.
func TestShutdownFinishesTheBatch(t *testing.T) {
	r := newRig(Config{BatchSize: 2, BatchWait: time.Second}, 5)
	r.counter.block = make(chan struct{})
	r.counter.entered = make(chan struct{}, 1)
	r.kafka.add(voteMsg(t, 5, 7, "a"), voteMsg(t, 5, 8, "b"))
	x := run(t, r)
	<-r.counter.entered                // Redis is being written
	if err := x.signal(); err != nil { // SIGTERM arrives meanwhile
		t.Fatalf("Run = %v", err)
	}
	close(r.counter.block)
	x.leave()
	if got := r.j.list(); !slices.Contains(got, "commit 5:8") {
		t.Fatalf("writes = %q, want the batch committed before the group was left", got)
	}
}

// When the drain takes longer than DrainTimeout (Redis down at shutdown), the batch is left
// uncommitted rather than committed unapplied.
func TestShutdownNeverCommitsUnapplied(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 10 * time.Millisecond, DrainTimeout: 100 * time.Millisecond}, 0)
	r.counter.failApply = 1 << 30
	r.kafka.add(voteMsg(t, 0, 0, "a"))
	x := run(t, r)
	r.waitJournal(t, "redis-failed 0")
	if err := x.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if slices.ContainsFunc(r.j.list(), func(s string) bool { return strings.HasPrefix(s, "commit") }) {
		t.Fatalf("committed an unapplied record: %q", r.j.list())
	}
}
