package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Reachable returns nil when some broker answers and reports every partition of the votes topic
// with a leader: the readiness probe of every process that writes or reads votes (the gRPC
// producer, the consumer). It dials afresh on each call (a writer's transport answers metadata
// from a cache, which would hide a broker that went away); callers check about once a second.
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
	parts, err := conn.ReadPartitions(VotesTopic)
	if err != nil {
		return fmt.Errorf("read partitions of %s: %w", VotesTopic, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions", VotesTopic)
	}
	for _, p := range parts {
		if p.Leader.Host == "" {
			return fmt.Errorf("topic %s partition %d has no leader", VotesTopic, p.ID)
		}
	}
	return nil
}
