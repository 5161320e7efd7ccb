package consumer_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
)

// Kafka's data is lost under a running consumer (its volumes wiped, the broker formatted anew
// and topic votes made again) while Redis keeps its watermarks. Read on from those, the new
// topic's records at or below them would be skipped without a word: votes lost. The consumer
// must refuse the partitions instead, saying so in its log and /readyz, and count nothing of
// them; once an operator resets the watermarks (docs/data.md) it counts the new topic from its
// start, and every vote of both topics is counted exactly once. (Readiness after the reset is
// not checked: a write check the Kafka outage left failing clears only after a retried write
// succeeds, which is the loop's behaviour, not this check's.)
func TestRecreatedTopicIsRefused(t *testing.T) {
	e := start(t)
	c := e.startConsumer(stack.ConsumerName)
	before := newVotes(21)
	e.produce(before.next(600, 0)...)
	e.waitExactTotal(len(before.first))
	time.Sleep(consume.AnchorEvery + 2*time.Second) // each partition's anchor reaches its watermark

	if err := e.stack.KillOne(stack.KafkaName); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.cfg.DataDir, stack.KafkaName)); err != nil {
		t.Fatal(err)
	}
	if err := e.stack.StartOne(e.ctx, stack.KafkaName); err != nil {
		t.Fatal(err)
	}
	// More records than were counted: every partition of the new topic ends past its old
	// watermark, so only the anchors can tell the topics apart.
	after := newVotes(22)
	e.produce(after.next(1800, 0)...)

	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(e.logs.String(), "is not the one Redis's counts were made from") {
		if time.Now().After(deadline) {
			t.Fatalf("no partition refused within 90 s of Kafka's data being lost; Redis counts %d votes (%d before the loss)",
				e.total(), len(before.first))
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // what a consumer reading on would have counted by now
	if got := e.total(); got != len(before.first) {
		t.Errorf("after the loss Redis counts %d votes, want the %d counted before: the new topic was read from the old watermarks", got, len(before.first))
	}
	if code := c.readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz answers %d while partitions are refused, want 503", code)
	}

	// The operator's decision (docs/data.md): count the new topic from its start.
	for p := range queue.VotesPartitions {
		if err := e.rdb.Del(e.ctx, counts.AppliedKey(p), counts.AnchorKey(p)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	both := newVotes(0)
	for _, v := range []*votes{before, after} {
		for _, id := range v.ids {
			both.first[id] = v.first[id]
			both.ids = append(both.ids, id)
		}
		both.records += v.records
	}
	e.waitExactTotal(len(both.first))
	e.checkExact(both)
}
