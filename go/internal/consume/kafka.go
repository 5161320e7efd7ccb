package consume

import (
	"context"
	"fmt"
	"sync"
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

// NewKafka returns the membership of the consumer group on topic votes, the readers of
// partitions, and a close func that leaves the group once every partition's batches are done.
// The group is joined at the first Next, once topic votes exists (see kafkaGroup.join).
func NewKafka(cfg KafkaConfig) (Membership, Partitions, func() error, error) {
	groupCfg := kafka.ConsumerGroupConfig{
		ID:                Group,
		Brokers:           cfg.Brokers,
		Topics:            []string{queue.VotesTopic},
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.SessionTimeout / 5,
		RebalanceTimeout:  2 * cfg.SessionTimeout,
		StartOffset:       kafka.FirstOffset,
		Logger:            cfg.Logger,
		ErrorLogger:       cfg.ErrorLogger,
	}
	if err := groupCfg.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("consumer group: %w", err)
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	g := &kafkaGroup{cfg: groupCfg, client: client}
	return g, &kafkaPartitions{cfg: cfg, client: client}, g.leave, nil
}

// kafkaGroup joins the group lazily: a member that joins before topic votes exists (a first
// deploy, where the consumers start while the topic operator has not made it yet) is assigned
// no partition, and the group stays so until a member joins or leaves, consuming nothing while
// every replica is Ready (the real-node test, go/test/realnode, saw both replicas idle with
// votes waiting). So the first Next waits until the topic has its partitions, then joins.
type kafkaGroup struct {
	cfg    kafka.ConsumerGroupConfig
	client *kafka.Client
	mu     sync.Mutex
	cg     *kafka.ConsumerGroup
}

func (g *kafkaGroup) Next(ctx context.Context) (Generation, error) {
	cg, err := g.join(ctx)
	if err != nil {
		return nil, err
	}
	gen, err := cg.Next(ctx)
	if err != nil {
		return nil, err
	}
	return kafkaGeneration{gen}, nil
}

func (g *kafkaGroup) join(ctx context.Context) (*kafka.ConsumerGroup, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cg != nil {
		return g.cg, nil
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		meta, err := g.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{queue.VotesTopic}})
		if err == nil && (len(meta.Topics) != 1 || meta.Topics[0].Error != nil || len(meta.Topics[0].Partitions) == 0) {
			err = fmt.Errorf("topic %s has no partitions yet", queue.VotesTopic)
			if len(meta.Topics) == 1 && meta.Topics[0].Error != nil {
				err = fmt.Errorf("topic %s: %w", queue.VotesTopic, meta.Topics[0].Error)
			}
		}
		if err == nil {
			break
		}
		if g.cfg.ErrorLogger != nil {
			g.cfg.ErrorLogger.Printf("not joining the group before topic %s exists: %v; retrying in %v", queue.VotesTopic, err, wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	cg, err := kafka.NewConsumerGroup(g.cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer group: %w", err)
	}
	g.cg = cg
	return cg, nil
}

// leave leaves the group, if it was joined.
func (g *kafkaGroup) leave() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cg == nil {
		return nil
	}
	return g.cg.Close()
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
