package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
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

type fakeFetcher struct {
	msgs    chan kafka.Message
	j       *journal
	commits chan kafka.Message
}

func (f *fakeFetcher) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	case m, ok := <-f.msgs:
		if !ok {
			return kafka.Message{}, io.EOF
		}
		return m, nil
	}
}

func (f *fakeFetcher) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		f.j.add("commit %d:%d", m.Partition, m.Offset)
		f.commits <- m
	}
	return nil
}

// fakeCounter has the semantics of counts.Store: watermark per partition, vote ids once.
type fakeCounter struct {
	mu        sync.Mutex
	j         *journal
	watermark map[int]int64
	seen      map[string]bool
	total     int
	failApply int           // fail this many Apply calls first
	block     chan struct{} // if set, Apply waits for it
}

func (c *fakeCounter) Applied(_ context.Context, p int) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.watermark[p]; ok {
		return w, nil
	}
	return -1, nil
}

func (c *fakeCounter) Apply(ctx context.Context, p int, through int64, votes []counts.Vote) (counts.Result, error) {
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failApply > 0 {
		c.failApply--
		c.j.add("redis-failed %d", p)
		return counts.Result{}, errors.New("connection refused")
	}
	var r counts.Result
	w, ok := c.watermark[p]
	if !ok {
		w = -1
	}
	var offsets []string
	for _, v := range votes {
		offsets = append(offsets, fmt.Sprint(v.Offset))
		switch {
		case v.Offset <= w:
			r.Replayed++
		case c.seen[v.VoteID]:
			r.Duplicates++
		default:
			c.seen[v.VoteID] = true
			c.total++
			r.Counted++
		}
	}
	c.watermark[p] = max(w, through)
	c.j.add("redis %d:%s through %d", p, strings.Join(offsets, ","), through)
	return r, nil
}

type fakeLogs struct {
	j    *journal
	mu   sync.Mutex
	docs map[string]votelog.Log
}

func (f *fakeLogs) Insert(_ context.Context, logs []votelog.Log) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, l := range logs {
		ids = append(ids, fmt.Sprintf("%d:%d", l.Partition, l.Offset))
		if _, ok := f.docs[l.VoteID]; !ok {
			f.docs[l.VoteID] = l
		}
	}
	f.j.add("mongo %s", strings.Join(ids, ","))
	return nil
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
	in      *fakeFetcher
	counter *fakeCounter
	logs    *fakeLogs
	dlq     *fakeDLQ
	health  *Health
	loop    *Loop
}

func newRig(cfg Config) *rig {
	j := &journal{}
	r := &rig{
		j:       j,
		in:      &fakeFetcher{msgs: make(chan kafka.Message, 100), j: j, commits: make(chan kafka.Message, 100)},
		counter: &fakeCounter{j: j, watermark: map[int]int64{}, seen: map[string]bool{}},
		logs:    &fakeLogs{j: j, docs: map[string]votelog.Log{}},
		dlq:     &fakeDLQ{j: j},
		health:  NewHealth(),
	}
	r.loop = New(cfg, Deps{
		In: r.in, Counts: r.counter, Logs: r.logs, DeadLetters: r.dlq, Health: r.health,
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.DiscardHandler),
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

func poisonMsg(p int, offset int64) kafka.Message {
	return kafka.Message{Topic: queue.VotesTopic, Partition: p, Offset: offset, Key: []byte("x"), Value: []byte("not a vote")}
}

// waitCommit waits for a commit of partition p at offset.
func (r *rig) waitCommit(t *testing.T, p int, offset int64) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-r.in.commits:
			if m.Partition == p && m.Offset == offset {
				return
			}
		case <-timeout:
			t.Fatalf("no commit of %d:%d; journal %q", p, offset, r.j.list())
		}
	}
}

func run(t *testing.T, r *rig) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	t.Cleanup(stop)
	return func() error {
		stop()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
			return nil
		}
	}
}

// A batch is written in the one order that makes a crash anywhere safe: dead letters, logs,
// counts, commit.
func TestBatchWritesInOrderThenCommits(t *testing.T) {
	r := newRig(Config{BatchSize: 4, BatchWait: time.Second})
	stop := run(t, r)
	for _, m := range []kafka.Message{
		voteMsg(t, 0, 0, "a"), poisonMsg(0, 1), voteMsg(t, 0, 2, "b"), voteMsg(t, 0, 3, "a"),
	} {
		r.in.msgs <- m
	}
	r.waitCommit(t, 0, 3)
	want := []string{"dlq 0:1", "mongo 0:0,0:2", "redis 0:0,2,3 through 3", "commit 0:3"}
	if got := r.j.list(); !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	if err := stop(); err != nil {
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

// Records at or below the watermark (a replay after a crash) are neither logged, dead-lettered
// nor counted again, but committed.
func TestReplaySkipsAppliedRecords(t *testing.T) {
	r := newRig(Config{BatchSize: 4, BatchWait: time.Second})
	r.counter.watermark[2] = 11
	stop := run(t, r)
	for _, m := range []kafka.Message{poisonMsg(2, 10), voteMsg(t, 2, 11, "a"), voteMsg(t, 2, 12, "b"), poisonMsg(2, 13)} {
		r.in.msgs <- m
	}
	r.waitCommit(t, 2, 13)
	want := []string{"dlq 2:13", "mongo 2:12", "redis 2:12 through 13", "commit 2:13"}
	if got := r.j.list(); !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	stop()
}

// A failing Redis is retried; meanwhile the consumer is not ready and commits nothing.
func TestFailingWritesAreRetriedAndBlockTheCommit(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	r.counter.failApply = 5
	stop := run(t, r)
	r.in.msgs <- voteMsg(t, 1, 0, "a")
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
	got := r.j.list()
	want := []string{"mongo 1:0", "redis-failed 1", "redis-failed 1", "redis-failed 1", "redis-failed 1",
		"redis-failed 1", "redis 1:0 through 0", "commit 1:0"}
	if !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	stop()
}

// Partitions are applied concurrently: one stuck partition does not hold up another.
func TestPartitionsProceedIndependently(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 10 * time.Millisecond, DrainTimeout: 100 * time.Millisecond})
	stuck := &stuckCounter{fakeCounter: r.counter, stuck: 3}
	r.loop.Counts = stuck
	stop := run(t, r)
	r.in.msgs <- voteMsg(t, 3, 0, "a")
	r.in.msgs <- voteMsg(t, 4, 0, "b")
	r.waitCommit(t, 4, 0)
	if slices.Contains(r.j.list(), "commit 3:0") {
		t.Fatal("the stuck partition was committed")
	}
	stop()
}

type stuckCounter struct {
	*fakeCounter
	stuck int
}

func (s *stuckCounter) Apply(ctx context.Context, p int, through int64, votes []counts.Vote) (counts.Result, error) {
	if p == s.stuck {
		return counts.Result{}, errors.New("stuck")
	}
	return s.fakeCounter.Apply(ctx, p, through, votes)
}

// On shutdown the batch in hand is finished and committed before Run returns.
func TestShutdownFinishesTheBatch(t *testing.T) {
	r := newRig(Config{BatchSize: 2, BatchWait: time.Second})
	r.counter.block = make(chan struct{})
	stop := run(t, r)
	r.in.msgs <- voteMsg(t, 5, 7, "a")
	r.in.msgs <- voteMsg(t, 5, 8, "b")
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(r.j.list(), "mongo 5:7,5:8") {
		if time.Now().After(deadline) {
			t.Fatalf("the batch never reached MongoDB: %q", r.j.list())
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error)
	go func() { done <- stop() }()
	time.Sleep(50 * time.Millisecond) // SIGTERM arrives while Redis is being written
	close(r.counter.block)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := r.j.list(); !slices.Contains(got, "commit 5:8") {
		t.Fatalf("writes = %q, want the batch committed before Run returned", got)
	}
}

// When the drain takes longer than DrainTimeout (Redis down at shutdown), the batch is left
// uncommitted rather than committed unapplied.
func TestShutdownNeverCommitsUnapplied(t *testing.T) {
	r := newRig(Config{BatchSize: 1, BatchWait: time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 10 * time.Millisecond, DrainTimeout: 100 * time.Millisecond})
	r.counter.failApply = 1 << 30
	stop := run(t, r)
	r.in.msgs <- voteMsg(t, 0, 0, "a")
	time.Sleep(50 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if slices.ContainsFunc(r.j.list(), func(s string) bool { return strings.HasPrefix(s, "commit") }) {
		t.Fatalf("committed an unapplied record: %q", r.j.list())
	}
}

func TestHealth(t *testing.T) {
	h := NewHealth("redis", "mongo")
	if err := h.Err(); err == nil || !strings.Contains(err.Error(), "not checked yet") {
		t.Fatalf("fresh health = %v, want not ready", err)
	}
	h.Set("redis", nil)
	h.Set("mongo", nil)
	if err := h.Err(); err != nil {
		t.Fatalf("health = %v, want ready", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Watch(ctx, "kafka", 10*time.Millisecond, func(context.Context) error { return errors.New("down") })
	deadline := time.Now().Add(5 * time.Second)
	for h.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := h.Err(); err == nil || !strings.Contains(err.Error(), "kafka: down") {
		t.Fatalf("health = %v, want kafka: down", err)
	}
}
