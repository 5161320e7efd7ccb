package consume

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// KafkaConfig is how the consumer reaches Kafka.
type KafkaConfig struct {
	Brokers []string
	// SessionTimeout is how long the group waits for a silent member before moving its partitions.
	SessionTimeout time.Duration
	// QueueCapacity is how many records a partition's reader queues ahead of the loop.
	QueueCapacity int
	Logger        kafka.Logger
	ErrorLogger   kafka.Logger
}

// NewKafka joins the consumer group on topic votes and returns the membership, the readers of
// partitions, and a close func that leaves the group once every partition's batches are done.
func NewKafka(cfg KafkaConfig) (Membership, Partitions, func() error, error) {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                Group,
		Brokers:           cfg.Brokers,
		Topics:            []string{queue.VotesTopic},
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.SessionTimeout / 5,
		RebalanceTimeout:  2 * cfg.SessionTimeout,
		StartOffset:       kafka.FirstOffset,
		Logger:            cfg.Logger,
		ErrorLogger:       cfg.ErrorLogger,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("consumer group: %w", err)
	}
	parts := &kafkaPartitions{cfg: cfg, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}}
	return kafkaGroup{cg}, parts, cg.Close, nil
}

type kafkaGroup struct{ cg *kafka.ConsumerGroup }

func (g kafkaGroup) Next(ctx context.Context) (Generation, error) {
	gen, err := g.cg.Next(ctx)
	if err != nil {
		return nil, err
	}
	return kafkaGeneration{gen}, nil
}

type kafkaGeneration struct{ *kafka.Generation }

func (g kafkaGeneration) Partitions() []int {
	var ps []int
	for _, a := range g.Assignments[queue.VotesTopic] {
		ps = append(ps, a.ID)
	}
	return ps
}

func (g kafkaGeneration) Commit(partition int, next int64) error {
	return g.CommitOffsets(map[string]map[int]int64{queue.VotesTopic: {partition: next}})
}

type kafkaPartitions struct {
	cfg    KafkaConfig
	client *kafka.Client
}

func (k *kafkaPartitions) Open(partition int, offset int64) PartitionReader {
	// One reader per partition: small fetches and a short queue each, so six of them hold a few
	// MiB, not the 60 MiB that 10 MiB fetches would (the consumer runs under a soft memory limit).
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       k.cfg.Brokers,
		Topic:         queue.VotesTopic,
		Partition:     partition,
		QueueCapacity: k.cfg.QueueCapacity,
		MaxBytes:      1 << 20,
		MaxWait:       time.Second,
		Logger:        k.cfg.Logger,
		ErrorLogger:   k.cfg.ErrorLogger,
	})
	// Without a group, SetOffset only records where the first fetch starts; it cannot fail.
	_ = r.SetOffset(offset)
	return newKafkaReader(r, k.cfg.QueueCapacity)
}

// kafkaReader hands a *kafka.Reader's records over in batches: a goroutine fetches ahead into a
// short queue (every record held is heap the collector scans, six partitions at once under the
// consumer's soft memory limit).
type kafkaReader struct {
	r       *kafka.Reader
	in      chan fetchResult
	pending error // a failed fetch met in the middle of a batch, returned by the next Fetch
	stop    context.CancelFunc
	done    chan struct{}
}

type fetchResult struct {
	f   Fetched
	err error
}

func newKafkaReader(r *kafka.Reader, queue int) *kafkaReader {
	ctx, stop := context.WithCancel(context.Background())
	k := &kafkaReader{r: r, in: make(chan fetchResult, max(queue, 1)), stop: stop, done: make(chan struct{})}
	go k.prefetch(ctx)
	return k
}

func (k *kafkaReader) prefetch(ctx context.Context) {
	defer close(k.done)
	for {
		m, err := k.r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case k.in <- fetchResult{Fetched{m, time.Now()}, err}:
		case <-ctx.Done():
			return
		}
	}
}

func (k *kafkaReader) Fetch(ctx context.Context, most int, wait, idle time.Duration) ([]Fetched, error) {
	if err := k.pending; err != nil {
		k.pending = nil
		return nil, err
	}
	idleTimer := time.NewTimer(idle)
	defer idleTimer.Stop()
	var batch []Fetched
	select {
	case f := <-k.in:
		if f.err != nil {
			return nil, f.err
		}
		batch = append(make([]Fetched, 0, most), f.f)
	case <-idleTimer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	waitTimer := time.NewTimer(wait)
	defer waitTimer.Stop()
	for len(batch) < most {
		select {
		case f := <-k.in:
			if f.err != nil {
				k.pending = f.err
				return batch, nil
			}
			batch = append(batch, f.f)
		case <-waitTimer.C:
			return batch, nil
		case <-ctx.Done():
			return batch, nil
		}
	}
	return batch, nil
}

func (k *kafkaReader) Close() error {
	k.stop()
	<-k.done
	return k.r.Close()
}

func (k *kafkaPartitions) Earliest(ctx context.Context, partition int) (int64, error) {
	res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{queue.VotesTopic: {kafka.FirstOffsetOf(partition)}},
	})
	if err != nil {
		return 0, fmt.Errorf("earliest offset of partition %d: %w", partition, err)
	}
	for _, p := range res.Topics[queue.VotesTopic] {
		if p.Partition == partition {
			if p.Error != nil {
				return 0, fmt.Errorf("earliest offset of partition %d: %w", partition, p.Error)
			}
			return p.FirstOffset, nil
		}
	}
	return 0, fmt.Errorf("earliest offset of partition %d: not in the answer", partition)
}
