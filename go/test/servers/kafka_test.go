package servers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// The harness created the votes topic with its partitions; a consumer group reads back
// everything produced to it, across partitions.
func TestKafkaProduceConsumeWithGroup(t *testing.T) {
	brokers := mustEnv(t, "KAFKA_BROKERS")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	conn, err := kafka.DialContext(ctx, "tcp", brokers)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	parts, err := conn.ReadPartitions(queue.VotesTopic, queue.DeadLetterTopic)
	conn.Close()
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	count := map[string]int{}
	for _, p := range parts {
		count[p.Topic]++
	}
	if count[queue.VotesTopic] != queue.VotesPartitions || count[queue.DeadLetterTopic] != queue.DeadLetterPartitions {
		t.Fatalf("partitions = %v, want %s:%d %s:%d", count,
			queue.VotesTopic, queue.VotesPartitions, queue.DeadLetterTopic, queue.DeadLetterPartitions)
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers),
		Topic:        queue.VotesTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	const n = 60
	sent := make(map[string]bool, n)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		key := fmt.Sprintf("vote-%03d", i)
		sent[key] = true
		msgs[i] = kafka.Message{Key: []byte(key), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{brokers},
		GroupID:     "harness-test",
		Topic:       queue.VotesTopic,
		StartOffset: kafka.FirstOffset,
	})
	defer r.Close()
	seenPartitions := map[int]bool{}
	for len(sent) > 0 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume (still missing %d): %v", len(sent), err)
		}
		delete(sent, string(m.Key))
		seenPartitions[m.Partition] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if len(seenPartitions) < 2 {
		t.Fatalf("all %d records came from partitions %v; keys should spread", n, seenPartitions)
	}
}
