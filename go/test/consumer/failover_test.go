package consumer_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tally-voting/tally/go/internal/audit"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/stack/stacktest"
	"github.com/tally-voting/tally/go/internal/votelog"
	"github.com/tally-voting/tally/go/test/testenv"
)

// Kafka as deployed (three nodes, replication 3, min.insync.replicas 2) under steady load on both
// routes, with two consumers, while its nodes fail: the leader of some partitions is SIGKILLed
// and later restarted, another leader shuts down cleanly, then two nodes die at once, so no
// write can be replicated, and come back. Meanwhile no route may acknowledge a vote that is not
// replicated: with two nodes down every answer is a 503. At the end, after the client resent
// every vote that was not acknowledged with the same Idempotency-Key (as docs/api.md asks), each
// vote is counted once in Redis and logged once in MongoDB, although the producers retried
// writes whose outcome they did not know (more records in Kafka than votes). No timing is
// asserted: how long each route refuses votes is the failover benchmark's (docs/performance.md).
func TestKafkaFailoverUnderLoadLosesAndDoublesNothing(t *testing.T) {
	cfg := stacktest.Config(t)
	cfg.KafkaNodes = stack.KafkaClusterNodes
	e := startConfig(t, cfg, stack.KafkaName, stack.RedisName, stack.MongoName, stack.GRPCFrontName, stack.WasmProducerName)
	e.startConsumer(stack.ConsumerName)
	e.startConsumer("consumer-2")

	rate := float64(testenv.Int(t, "FAILOVER_RATE", 40)) // votes per second per route
	routes := map[string]*load.HTTP{
		"grpc": load.NewHTTP(e.cfg.GRPCFrontURL(), 64),
		"wasm": load.NewHTTP(e.cfg.WasmProducerURL(), 64),
	}
	runs := map[string]*load.Steady{}
	for name, h := range routes {
		runs[name] = load.StartSteady(e.ctx, h, rate, 64, "failover-"+name)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			for _, r := range runs {
				r.Stop()
			}
		}
	})
	e.waitAccepted(runs, time.Now(), nil, "the start")

	// 1. A crash: the leader of partition 0 (and of whatever else it leads) is SIGKILLed.
	victim, led := e.leaderOf(0)
	t.Logf("SIGKILL node %d, leader of partitions %v", victim, led)
	at := time.Now()
	if err := e.stack.KillOne(stack.KafkaNodeName(victim)); err != nil {
		t.Fatal(err)
	}
	e.waitAccepted(runs, at, led, "the SIGKILL of a leader")
	time.Sleep(2 * time.Second) // some load on the two nodes left
	e.restartNodes(victim)

	// 2. A controlled shutdown (SIGTERM) of the leader of partition 1: leaders move first.
	victim, led = e.leaderOf(1)
	t.Logf("SIGTERM node %d, leader of partitions %v", victim, led)
	at = time.Now()
	if err := e.stack.StopOne(stack.KafkaNodeName(victim)); err != nil {
		t.Fatal(err)
	}
	e.waitAccepted(runs, at, led, "the controlled shutdown of a leader")
	time.Sleep(2 * time.Second)
	e.restartNodes(victim)

	// 3. Two nodes SIGKILLed at once: min.insync.replicas 2 cannot be met, and with the KRaft
	// quorum gone no leader can move. Nothing may be acknowledged until they are back.
	down := []int{1, 2, 3}
	survivor := down[time.Now().UnixNano()%3]
	down = slices.DeleteFunc(down, func(n int) bool { return n == survivor })
	t.Logf("SIGKILL nodes %v at once, node %d stays", down, survivor)
	var wg sync.WaitGroup
	for _, n := range down {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.stack.KillOne(stack.KafkaNodeName(n)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	outage := time.Now()
	e.waitRefused(runs, outage, 10)
	restored := time.Now()
	e.restartNodes(down...)
	for name, r := range runs {
		var after []string
		for _, a := range r.Answers() {
			if a.Sent.After(outage) && a.Answered.Before(restored) && a.Status != http.StatusServiceUnavailable {
				after = append(after, fmt.Sprintf("%s: %d %v", a.Key, a.Status, a.Err))
			}
		}
		if len(after) > 0 {
			t.Errorf("%s answered %d votes sent with two of three nodes down otherwise than 503 (first: %s)",
				name, len(after), after[0])
		}
	}
	e.waitAccepted(runs, time.Now(), nil, "the two nodes' return")
	time.Sleep(2 * time.Second)

	// The load stops; the client resends what was not acknowledged, with the same key.
	stopped = true
	for _, r := range runs {
		r.StopSending()
	}
	votes := map[string]*load.Vote{} // key → vote
	for name, r := range runs {
		answers := r.Stop()
		counted := map[int]int{}
		for _, a := range answers {
			counted[a.Status]++
			votes[a.Key] = a.Vote
			if !a.Accepted() {
				e.resend(routes[name], a)
			}
		}
		t.Logf("%s: %d votes, answered %v (0: no answer)", name, len(answers), counted)
	}

	e.waitCommitted()
	e.checkCountedOnce(votes)
	end, _, err := e.offsets()
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	for _, n := range end {
		records += n
	}
	t.Logf("%d records in topic votes for %d votes: %d written more than once by retries", records, len(votes), records-int64(len(votes)))
}

// leaderOf returns the node leading partition p of topic votes and every partition it leads.
func (e *env) leaderOf(p int) (node int, led []int) {
	e.t.Helper()
	parts := e.partitions()
	node = parts[p].Leader.ID
	for _, q := range parts {
		if q.Leader.ID == node {
			led = append(led, q.ID)
		}
	}
	return node, led
}

// partitions asks a live node for topic votes's partitions: leaders, replicas, in-sync replicas.
func (e *env) partitions() []kafka.Partition {
	e.t.Helper()
	var last error
	for _, addr := range e.brokers() {
		conn, err := kafka.DialContext(e.ctx, "tcp", addr)
		if err != nil {
			last = err
			continue
		}
		parts, err := conn.ReadPartitions(queue.VotesTopic)
		conn.Close()
		if err != nil {
			last = err
			continue
		}
		slices.SortFunc(parts, func(a, b kafka.Partition) int { return a.ID - b.ID })
		return parts
	}
	e.t.Fatalf("no Kafka node answered: %v", last)
	return nil
}

// restartNodes starts the given Kafka nodes again, together (a lone node of three has no
// quorum), and waits until every replica of every partition is back in sync.
func (e *env) restartNodes(nodes ...int) {
	e.t.Helper()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.stack.StartOne(e.ctx, stack.KafkaNodeName(n)); err != nil {
				e.t.Errorf("restart node %d: %v", n, err)
			}
		}()
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		parts := e.partitions()
		if !slices.ContainsFunc(parts, func(p kafka.Partition) bool { return len(p.Isr) != len(p.Replicas) }) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("replicas not in sync 2 min after node(s) %v restarted: %+v", nodes, parts)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// partitionOf is the partition of topic votes both producers write a vote id to (murmur2).
func partitionOf(key string) int {
	parts := make([]int, queue.VotesPartitions)
	for i := range parts {
		parts[i] = i
	}
	return kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(key)}, parts...)
}

// waitAccepted waits until every route has accepted a vote sent after since, on one of the
// partitions led (any partition when led is empty). The bound only keeps a broken run from
// hanging; how long it takes is the benchmark's to say.
func (e *env) waitAccepted(runs map[string]*load.Steady, since time.Time, led []int, after string) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for name, r := range runs {
		for !slices.ContainsFunc(r.Answers(), func(a load.Answer) bool {
			return a.Accepted() && a.Sent.After(since) && (len(led) == 0 || slices.Contains(led, partitionOf(a.Key)))
		}) {
			if time.Now().After(deadline) {
				e.t.Fatalf("%s accepted no vote on partitions %v for 2 min after %s", name, led, after)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitRefused waits until every route has answered at least n votes sent after since.
func (e *env) waitRefused(runs map[string]*load.Steady, since time.Time, n int) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for name, r := range runs {
		for {
			answered := 0
			for _, a := range r.Answers() {
				if a.Sent.After(since) {
					answered++
				}
			}
			if answered >= n {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("%s answered %d votes in 2 min with two Kafka nodes down, want %d", name, answered, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// resend casts a vote that was not acknowledged again with its key until it is, as a client
// following docs/api.md does.
func (e *env) resend(h *load.HTTP, a load.Answer) {
	e.t.Helper()
	var err error
	for range 20 {
		if err = h.CastKeyed(e.ctx, a.Vote, a.Key); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.t.Fatalf("vote %s still not accepted after 20 tries: %v", a.Key, err)
}

// checkCountedOnce checks that Redis counted each vote once and MongoDB logged each once and
// nothing else, and that the audit finds the counts equal to the logs.
func (e *env) checkCountedOnce(votes map[string]*load.Vote) {
	e.t.Helper()
	t := e.t
	byBand, byAlbum := map[string]int{}, map[string]int{}
	for _, v := range votes {
		byBand[v.Band]++
		byAlbum[counts.AlbumField(v.Band, v.Title)]++
	}
	if got := e.total(); got != len(votes) {
		t.Errorf("%s = %d, want %d votes", counts.TotalKey, got, len(votes))
	}
	e.checkHash(counts.BandKey, byBand)
	e.checkHash(counts.AlbumKey, byAlbum)

	logs := e.mongo.Database(votelog.Database).Collection(votelog.LogsCollection)
	cur, err := logs.Find(e.ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var all []votelog.Log
	if err := cur.All(e.ctx, &all); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range all {
		seen[l.VoteID]++
		if v, ok := votes[l.VoteID]; !ok {
			t.Errorf("log of a vote never sent: %s", l.VoteID)
		} else if l.Name != v.Band || l.Album != v.Title || l.Rank != v.Rank {
			t.Errorf("log %s is %s / %s / %d, the vote was %s / %s / %d", l.VoteID, l.Name, l.Album, l.Rank, v.Band, v.Title, v.Rank)
		}
	}
	missing := 0
	for key := range votes {
		if seen[key] != 1 {
			missing++
			if missing <= 5 {
				t.Errorf("vote %s logged %d times, want once", key, seen[key])
			}
		}
	}
	if len(all) != len(votes) {
		t.Errorf("MongoDB holds %d logs for %d votes", len(all), len(votes))
	}
	res, err := audit.Run(e.ctx, counts.New(e.rdb), votelog.New(e.mongo.Database(votelog.Database)), false,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || res.Differences != 0 {
		t.Errorf("audit: %d differences between Redis and MongoDB (%v)", res.Differences, err)
	}
}
