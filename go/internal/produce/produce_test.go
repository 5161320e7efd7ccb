package produce

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// The settings the vote contract depends on are set explicitly, not left to kafka-go's defaults.
func TestNewWriterSettings(t *testing.T) {
	w := NewWriter(Config{Brokers: []string{"a:1", "b:2"}, BatchTimeout: 3 * time.Millisecond, WriteTimeout: time.Second})
	defer w.Close()
	if w.RequiredAcks != kafka.RequireAll {
		t.Errorf("RequiredAcks = %v, want RequireAll", w.RequiredAcks)
	}
	if _, ok := w.Balancer.(kafka.Murmur2Balancer); !ok {
		t.Errorf("Balancer = %T, want a key hash", w.Balancer)
	}
	if w.Topic != queue.VotesTopic || w.Async || w.AllowAutoTopicCreation {
		t.Errorf("Topic %q, Async %v, AllowAutoTopicCreation %v", w.Topic, w.Async, w.AllowAutoTopicCreation)
	}
	if w.BatchTimeout != 3*time.Millisecond || w.WriteTimeout != time.Second || w.ReadTimeout != time.Second {
		t.Errorf("timeouts: batch %v write %v read %v", w.BatchTimeout, w.WriteTimeout, w.ReadTimeout)
	}
	if w.Addr.String() != "a:1,b:2" {
		t.Errorf("Addr = %v", w.Addr)
	}
}

// The same key always goes to the same partition.
func TestBalancerIsAKeyHash(t *testing.T) {
	w := NewWriter(Config{})
	parts := []int{0, 1, 2, 3, 4, 5}
	msg := kafka.Message{Key: []byte("0190f1e2-7c3a-7b2e-9d4f-1a2b3c4d5e6f")}
	first := w.Balancer.Balance(msg, parts...)
	for range 20 {
		if got := w.Balancer.Balance(msg, parts...); got != first {
			t.Fatalf("partition %d then %d for one key", first, got)
		}
	}
}
