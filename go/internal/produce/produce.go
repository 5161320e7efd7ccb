// Package produce configures the Kafka writer that the gRPC producer shares across all requests,
// and checks that Kafka is reachable for its readiness.
package produce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// Config is the writer's tunables; everything else is fixed by the vote contract.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// BatchTimeout is how long a partition's batch waits for more records before it is sent.
	// A few milliseconds lets concurrent requests share one produce request.
	BatchTimeout time.Duration
	// WriteTimeout bounds each network write and read to a broker.
	WriteTimeout time.Duration
	// ClientID names the producer in the broker's logs and metrics.
	ClientID string
}

// NewWriter returns the one writer a producer process uses for every vote. Its settings are set
// explicitly rather than left to kafka-go's defaults (which are acks=none for a Writer literal and
// a one-second batch timeout):
//   - RequiredAcks=RequireAll: a vote is acknowledged only once every in-sync replica has it;
//   - Murmur2 hash of the key (the vote id), the partitioner of Kafka's Java client, so a vote's
//     retries land in one partition whichever standard client wrote them;
//   - a short BatchTimeout; WriteMessages blocks its caller until the record is acknowledged, but
//     concurrent callers' records are batched together per partition;
//   - few attempts with short backoff, so a dead broker yields an error quickly (the front then
//     answers 503) instead of holding requests for seconds.
func NewWriter(cfg Config) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  queue.VotesTopic,
		Balancer:               kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           cfg.BatchTimeout,
		BatchSize:              200,
		BatchBytes:             1 << 20,
		MaxAttempts:            3,
		WriteBackoffMin:        20 * time.Millisecond,
		WriteBackoffMax:        250 * time.Millisecond,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		Async:                  false,
		AllowAutoTopicCreation: false,
		Transport: &kafka.Transport{
			ClientID:    cfg.ClientID,
			DialTimeout: 2 * time.Second,
			IdleTimeout: time.Minute,
			MetadataTTL: 10 * time.Second,
		},
	}
}

// Reachable returns nil when some broker answers and reports every partition of the votes topic
// with a leader. It dials afresh on each call (the writer's transport answers metadata from a
// cache, which would hide a broker that went away); callers check about once a second.
func Reachable(ctx context.Context, brokers []string) error {
	var errs []error
	dialer := &kafka.Dialer{Timeout: 2 * time.Second}
	for _, broker := range brokers {
		err := partitionsLed(ctx, dialer, broker)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", broker, err))
	}
	if len(errs) == 0 {
		return errors.New("no kafka brokers configured")
	}
	return fmt.Errorf("kafka unreachable: %w", errors.Join(errs...))
}

func partitionsLed(ctx context.Context, dialer *kafka.Dialer, broker string) error {
	conn, err := dialer.DialContext(ctx, "tcp", broker)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	parts, err := conn.ReadPartitions(queue.VotesTopic)
	if err != nil {
		return fmt.Errorf("read partitions of %s: %w", queue.VotesTopic, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions", queue.VotesTopic)
	}
	for _, p := range parts {
		if p.Leader.Host == "" {
			return fmt.Errorf("topic %s partition %d has no leader", queue.VotesTopic, p.ID)
		}
	}
	return nil
}
