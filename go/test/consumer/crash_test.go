package consumer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/stack"
)

// Redis comes back from a copy of its append-only directory taken about a second before it was
// SIGKILLed mid-stream (what appendfsync everysec may lose on a crashed node, or a restored
// backup): the consumers notice Redis is behind what they applied, replay from Kafka, and the
// counts end exact.
func TestRedisRestoredFromOlderCopy(t *testing.T) {
	e := start(t)
	first := e.startConsumer(stack.ConsumerName)
	second := e.startConsumer("consumer-2")
	v := newVotes(6)
	produced := e.produceStream(v, 60, 200, 150*time.Millisecond)
	e.waitTotal(3000)

	dir := filepath.Join(e.cfg.DataDir, stack.RedisName)
	snapshot := t.TempDir()
	if err := stack.CopyTree(dir, snapshot); err != nil {
		t.Fatal(err)
	}
	atCopy := e.total()
	// The copy must miss applied batches, as one taken a second before a crash does.
	e.waitTotal(atCopy + 500)
	atKill := e.total()
	if err := e.stack.KillOne(stack.RedisName); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := stack.CopyTree(snapshot, dir); err != nil {
		t.Fatal(err)
	}
	if err := e.stack.StartOne(e.ctx, stack.RedisName); err != nil {
		t.Fatal(err)
	}
	t.Logf("copied Redis's directory at %d counted votes, killed it at %d, restarted it with %d",
		atCopy, atKill, e.total())
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	e.waitCommitted()
	e.waitExactTotal(len(v.first))
	e.checkExact(v)
	rewinds := first.metric("tally_consumer_rewinds_total") + second.metric("tally_consumer_rewinds_total")
	if rewinds == 0 {
		t.Error("no consumer counted a rewind, yet Redis went back in time")
	}
	t.Logf("%d records, %d votes; %v rewinds", v.records, len(v.first), rewinds)
}

// Kafka is SIGKILLed under two consumers in the middle of a backlog and started again: the
// consumers retry their fetches and commits, rejoin the group, and the counts end exact.
func TestKafkaKilledCountsExactly(t *testing.T) {
	joinedBefore := 0
	consumers := killUnderConsumers(t, stack.KafkaName, 7, func(e *env) { joinedBefore = e.joined() })
	// The kill reached the consumers: their Kafka calls failed, or the group was joined anew.
	failed := 0.0
	for _, c := range consumers {
		failed += c.metric(`tally_consumer_write_errors_total{target="kafka"}`) + c.metric(`tally_consumer_write_errors_total{target="commit"}`)
	}
	rejoined := consumers[0].e.joined() - joinedBefore
	if failed == 0 && rejoined == 0 {
		t.Error("no consumer saw Kafka go: no failed fetch or commit, no new generation")
	}
	t.Logf("%v failed Kafka calls, %d generations joined after the kill", failed, rejoined)
}

// joined counts the consumers' log lines saying they joined a generation of the group.
func (e *env) joined() int {
	return strings.Count(e.logs.String(), "joined a generation of the group")
}

// The MongoDB-wire server is SIGKILLed under two consumers in the middle of a backlog and started
// again: the log writes are retried (some of a batch may have been stored, some not), and the
// counts end exact.
func TestMongoKilledCountsExactly(t *testing.T) {
	consumers := killUnderConsumers(t, stack.MongoName, 8, func(*env) {})
	failed := 0.0
	for _, c := range consumers {
		failed += c.metric(`tally_consumer_write_errors_total{target="mongo"}`)
	}
	if failed == 0 {
		t.Error("no failed MongoDB write was counted: the kill missed the consumers")
	}
	t.Logf("%v failed MongoDB writes retried", failed)
}

// waitBatches waits until the consumer has applied a batch.
func (c *consumer) waitBatches() {
	c.e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for c.metric("tally_consumer_batch_records_count") == 0 {
		if time.Now().After(deadline) {
			c.e.t.Fatalf("%s applied no batch in a minute", c.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killUnderConsumers SIGKILLs server while two consumers drain a backlog (calling beforeKill
// just before), starts it again two seconds later, produces more, and checks Redis and MongoDB
// hold exactly the votes.
func killUnderConsumers(t *testing.T, server string, seed uint64, beforeKill func(*env)) []*consumer {
	e := start(t)
	v := newVotes(seed)
	for range 4 {
		e.produce(v.next(1500, 0.1)...)
	}
	consumers := []*consumer{e.startConsumer(stack.ConsumerName), e.startConsumer("consumer-2")}
	e.waitTotal(1500)
	// The second consumer applies a batch only once the group has settled on a generation with
	// both members; a kill during the rebalance before that would meet consumers that write nothing.
	consumers[1].waitBatches()
	beforeKill(e)
	if err := e.stack.KillOne(server); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s at %d counted votes", server, e.total())
	time.Sleep(2 * time.Second)
	if err := e.stack.StartOne(e.ctx, server); err != nil {
		t.Fatal(err)
	}
	e.produce(v.next(1500, 0.1)...)
	e.waitCommitted()
	e.waitExactTotal(len(v.first))
	e.checkExact(v)
	t.Logf("%d records, %d votes", v.records, len(v.first))
	return consumers
}
