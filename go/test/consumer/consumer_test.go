package consumer_test

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
)

// A known multiset of votes, both routes, with repeated vote ids: Redis and MongoDB hold exactly
// it. Then SIGTERM: the consumer exits 0 with everything committed.
func TestCountsEveryVoteOnce(t *testing.T) {
	e := start(t)
	c := e.startConsumer(stack.ConsumerName)
	v := newVotes(1)
	for range 4 {
		e.produce(v.next(600, 0.15)...)
	}
	e.waitCommitted()
	e.checkExact(v)
	if dups := v.records - len(v.first); dups == 0 {
		t.Fatal("the test produced no repeated vote ids")
	}
	if got := c.metric(`tally_consumer_processed_total{outcome="counted"}`); got != float64(len(v.first)) {
		t.Errorf("counted metric = %v, want %d", got, len(v.first))
	}
	if got := c.metric(`tally_consumer_processed_total{outcome="duplicate"}`); got != float64(v.records-len(v.first)) {
		t.Errorf("duplicate metric = %v, want %d", got, v.records-len(v.first))
	}
	if got := c.metric("tally_consumer_apply_seconds_count"); got == 0 {
		t.Error("apply latency histogram is empty")
	}
	if code := c.terminate(); code != 0 {
		t.Fatalf("consumer exited %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(e.logs.Tail(1<<20), "group left") {
		t.Error("the consumer did not log leaving the group")
	}
}

// A batch written twice, record for record, as the Wasm producer's Kafka client writes it when a
// Produce answer is lost after the broker appended the batch (it has no idempotent producer:
// docs/wasm.md): the second copy of each vote id is a duplicate, so each vote is counted and
// logged once.
func TestBatchWrittenTwiceCountsOnce(t *testing.T) {
	e := start(t)
	c := e.startConsumer(stack.ConsumerName)
	v := newVotes(7)
	batch := v.next(300, 0)
	e.produce(batch...)
	e.produce(batch...)
	v.records += len(batch)
	e.waitCommitted()
	e.checkExact(v)
	if got := c.metric(`tally_consumer_processed_total{outcome="duplicate"}`); got != float64(len(batch)) {
		t.Errorf("duplicate metric = %v, want %d (the second copy of every record)", got, len(batch))
	}
}

// SIGKILL mid-stream, twice, and a restart each time: nothing is lost or counted twice.
func TestKilledConsumerCountsExactly(t *testing.T) {
	e := start(t)
	v := newVotes(2)
	// A backlog keeps every partition busy, so a kill lands in the middle of batches.
	for range 4 {
		e.produce(v.next(1000, 0.1)...)
	}
	c := e.startConsumer(stack.ConsumerName)
	produced := e.produceStream(v, 24, 250, 50*time.Millisecond)
	for _, at := range []int{1500, 4500} {
		e.waitTotal(at)
		c.kill()
		t.Logf("killed the consumer at %d counted votes", e.total())
		// What the killed consumer applied but did not commit is not read again (reading starts
		// at Redis's watermark); what it logged but did not count is, and counts once.
		c = e.startConsumer(stack.ConsumerName)
		e.waitTotal(e.total() + 500)
	}
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	e.waitCommitted()
	e.checkExact(v)
	t.Logf("%d records, %d votes", v.records, len(v.first))
}

// A second consumer joins mid-stream (the group rebalances), then the first is SIGKILLed (the
// group moves its partitions once its session times out): nothing is lost or counted twice.
func TestRebalanceCountsExactly(t *testing.T) {
	e := start(t)
	first := e.startConsumer(stack.ConsumerName)
	v := newVotes(3)
	produced := e.produceStream(v, 60, 200, 100*time.Millisecond)
	e.waitTotal(1500)
	second := e.startConsumer("consumer-2")
	e.waitTotal(e.total() + 1500)
	first.kill()
	t.Logf("killed the first consumer at %d counted votes", e.total())
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	e.waitCommitted()
	e.checkExact(v)
	if got := second.metric(`tally_consumer_processed_total{outcome="counted"}`); got == 0 {
		t.Error("the second consumer counted nothing: no rebalance happened")
	}
	if code := second.terminate(); code != 0 {
		t.Errorf("second consumer exited %d after SIGTERM, want 0", code)
	}
}

// Records that are not votes go to votes.dlq with the reason and where they came from; the
// votes around them are counted as usual.
func TestPoisonRecordsGoToDeadLetters(t *testing.T) {
	e := start(t)
	c := e.startConsumer(stack.ConsumerName)
	v := newVotes(4)
	good := v.next(300, 0.1)
	sample := good[0]
	noRoute := kafka.Message{Key: sample.Key, Value: sample.Value}
	otherKey := kafka.Message{Key: []byte("someone-else"), Value: sample.Value, Headers: sample.Headers}
	poison := []struct {
		msg    kafka.Message
		reason string
	}{
		{kafka.Message{Key: []byte("junk-1"), Value: []byte("\xff\xfe not protobuf")}, "not a tally.vote.v1.Vote"},
		{kafka.Message{Key: []byte("junk-2"), Value: []byte(`{"name":"Alux Nahual"}`)}, "not a tally.vote.v1.Vote"},
		{kafka.Message{Key: []byte("empty")}, "no vote_id"},
		{noRoute, "header tally-route"},
		{otherKey, "differs from vote_id"},
	}
	var msgs []kafka.Message
	for i, m := range good {
		msgs = append(msgs, m)
		if i%60 == 0 && i/60 < len(poison) {
			msgs = append(msgs, poison[i/60].msg)
		}
	}
	e.produce(msgs...)
	e.waitCommitted()
	e.checkExact(v)
	if got := c.metric("tally_consumer_dead_lettered_total"); got != float64(len(poison)) {
		t.Errorf("dead-lettered metric = %v, want %d", got, len(poison))
	}

	dlq := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{e.cfg.KafkaAddr()}, Topic: queue.DeadLetterTopic, Partition: 0, MaxWait: 100 * time.Millisecond,
	})
	defer dlq.Close()
	reasons := map[string]bool{}
	for range poison {
		m, err := dlq.ReadMessage(e.ctx)
		if err != nil {
			t.Fatalf("read %s: %v", queue.DeadLetterTopic, err)
		}
		reason := queue.Header(m, queue.HeaderDeadReason)
		reasons[reason] = true
		if queue.Header(m, queue.HeaderDeadTopic) != queue.VotesTopic {
			t.Errorf("dead letter %q: topic header %q", m.Key, queue.Header(m, queue.HeaderDeadTopic))
		}
		// The partition and offset headers point at the original record.
		p, err1 := strconv.Atoi(queue.Header(m, queue.HeaderDeadPartition))
		o, err2 := strconv.ParseInt(queue.Header(m, queue.HeaderDeadOffset), 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("dead letter %q: partition/offset headers %v", m.Key, m.Headers)
		}
		orig := readAt(t, e, p, o)
		if string(orig.Key) != string(m.Key) || string(orig.Value) != string(m.Value) {
			t.Errorf("dead letter %q: headers point at %d:%d, which holds %q", m.Key, p, o, orig.Key)
		}
	}
	for _, p := range poison {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, p.reason)
		}
		if !found {
			t.Errorf("no dead letter says %q; reasons: %q", p.reason, slices.Collect(maps.Keys(reasons)))
		}
	}
	end, err := e.kafka.ListOffsets(e.ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		queue.DeadLetterTopic: {kafka.LastOffsetOf(0)}}})
	if err != nil || end.Topics[queue.DeadLetterTopic][0].LastOffset != int64(len(poison)) {
		t.Errorf("%s holds %v records (%v), want %d", queue.DeadLetterTopic, end.Topics[queue.DeadLetterTopic], err, len(poison))
	}
}

func readAt(t *testing.T, e *env, partition int, offset int64) kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{e.cfg.KafkaAddr()}, Topic: queue.VotesTopic, Partition: partition, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadMessage(e.ctx)
	if err != nil {
		t.Fatalf("read %d:%d: %v", partition, offset, err)
	}
	return m
}

// Redis stops while votes arrive: the consumer reports not-ready and commits nothing more; once
// Redis is back it catches up by itself, and the counts are exact.
func TestRedisOutage(t *testing.T) {
	e := start(t)
	c := e.startConsumer(stack.ConsumerName)
	v := newVotes(5)
	e.produce(v.next(500, 0.1)...)
	e.waitCommitted()
	_, before, err := e.offsets()
	if err != nil {
		t.Fatal(err)
	}

	if err := e.stack.StopOne(stack.RedisName); err != nil {
		t.Fatal(err)
	}
	e.produce(v.next(500, 0.1)...)
	deadline := time.Now().Add(30 * time.Second)
	for c.readyz() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("the consumer still reports ready 30 s after Redis stopped")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // retries go on; nothing may be committed meanwhile
	_, during, err := e.offsets()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(before, during) {
		t.Fatalf("committed offsets moved while Redis was down: %v → %v", before, during)
	}
	if !c.running() {
		t.Fatal("the consumer exited while Redis was down")
	}

	if err := e.stack.StartOne(e.ctx, stack.RedisName); err != nil {
		t.Fatal(err)
	}
	e.produce(v.next(500, 0.1)...)
	e.waitCommitted()
	e.checkExact(v)
	deadline = time.Now().Add(10 * time.Second)
	for c.readyz() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the consumer is not ready again 10 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := c.metric(`tally_consumer_write_errors_total{target="redis"}`); got == 0 {
		t.Error("no failed Redis write was counted")
	}
}
