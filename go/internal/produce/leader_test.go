package produce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/stack/stacktest"
)

// Against a real three-node Kafka: when a partition's leader shuts down (its partitions get new
// leaders at once), the very next write of each partition succeeds, one vote per write as the
// gRPC producer writes them. kafka-go alone keeps writing to the old leader until its metadata
// timer fires (an hour here, to make that certain); these writes then all failed.
func TestWriterFollowsALeaderThatMoved(t *testing.T) {
	cfg := stacktest.Config(t)
	cfg.KafkaNodes = stack.KafkaClusterNodes
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := stacktest.Start(ctx, t, cfg, stack.KafkaName)

	w := NewWriter(Config{
		Brokers: strings.Split(cfg.KafkaBrokers(), ","), BatchTimeout: time.Millisecond,
		WriteTimeout: 5 * time.Second, ClientID: "leader-test", MetadataTTL: time.Hour,
	})
	defer w.Close()
	// One vote id per partition, so every leader is written to.
	keys := map[int]string{}
	for i := 0; len(keys) < queue.VotesPartitions; i++ {
		key := "vote-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		p := w.Balancer.Balance(kafka.Message{Key: []byte(key)}, 0, 1, 2, 3, 4, 5)
		if _, ok := keys[p]; !ok {
			keys[p] = key
		}
	}
	write := func(when string) {
		for p := range queue.VotesPartitions {
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(keys[p]), Value: []byte(when)}); err != nil {
				t.Errorf("write to partition %d %s: %v", p, when, err)
			}
		}
	}
	write("before")
	if t.Failed() {
		t.FailNow()
	}

	conn, err := kafka.DialContext(ctx, "tcp", cfg.KafkaAddr())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(queue.VotesTopic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	leader := parts[0].Leader.ID
	t.Logf("stopping node %d, leader of partition %d", leader, parts[0].ID)
	if err := s.StopOne(stack.KafkaNodeName(leader)); err != nil {
		t.Fatal(err)
	}
	write("after its leader shut down")
}
