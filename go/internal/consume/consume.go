// Package consume is the consumer's loop. It joins consumer group Group on topic votes and, for
// each partition the group assigns it, reads that partition from the offset Redis says is next
// (its applied-offset watermark + 1, not the group's committed offset) and applies its records in
// batches (BatchSize records, or what arrived within BatchWait of a batch's first record), each
// in an order that makes every step safe to repeat:
//
//  1. records that are not votes go to the dead-letter topic, acknowledged by every replica;
//  2. one log document per vote goes to MongoDB, keyed by vote id; the first log stored for a
//     vote id stays, and says which record (partition, offset) is the vote's (go/internal/votelog);
//  3. one Redis script counts the records that are their vote's record and advances the
//     partition's watermark, skipping records at or below it (go/internal/counts);
//  4. the next offset is committed to Kafka, at most once per CommitEvery and when the partition
//     idles or stops (for lag and tools; the watermark decides where reading starts).
//
// A crash or a rebalance between any two steps replays the batch, which changes nothing already
// done, so every vote is counted exactly once. If Redis loses applied batches (a crash within
// appendfsync's second, a restored backup, a failover to a lagging replica) its watermark falls
// below the one this consumer last wrote: the next apply, or the idle check every WatermarkCheck,
// notices, and the partition is read again from the watermark, without a restart
// (docs/data.md). A failing write is retried with backoff for as long as it takes (the consumer
// reports not-ready meanwhile); nothing is committed past a record that is not applied.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/readiness"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// Group is the consumer group every replica joins. Where a partition's reading starts comes from
// Redis, so the group's committed offsets only report progress.
const Group = "tally-consumer"

// Config tunes the loop; zero fields take the defaults below.
type Config struct {
	// BatchSize is the most records of one partition applied together.
	BatchSize int
	// BatchWait is how long a batch waits for more records after its first one.
	BatchWait time.Duration
	// RetryMin and RetryMax bound the backoff between attempts at a failing write.
	RetryMin, RetryMax time.Duration
	// AttemptTimeout bounds one attempt at a write or a commit.
	AttemptTimeout time.Duration
	// DrainTimeout is how long the batches in hand may take once Run's context is done or the
	// group rebalances.
	DrainTimeout time.Duration
	// WatermarkCheck is how often an idle partition compares Redis's watermark with the one it
	// last wrote, so a Redis that went back in time is noticed without new records.
	WatermarkCheck time.Duration
	// CommitEvery is the least time between two commits of a partition's offset; what is applied
	// meanwhile is committed with the next batch after it, or when the partition idles or stops.
	CommitEvery time.Duration
}

// Defaults of Config. DefaultBatchSize is large because every batch costs the MongoDB-wire
// server a fixed amount besides its inserts (docs/performance.md). DefaultBatchWait is short
// because under steady load the window is what every record waits at least: with the partitions'
// inserts sharing one write (votelog's group commit), 10 ms instead of 50 took accept-to-counted
// p99 at 1,000 votes/s from 164 to 87-92 ms, and at 5,000 from 5.6 to 2.2 s (docs/performance.md).
const (
	DefaultBatchSize      = 2000
	DefaultBatchWait      = 10 * time.Millisecond
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultDrainTimeout   = 8 * time.Second
	DefaultWatermarkCheck = time.Second
	DefaultCommitEvery    = time.Second
)

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	set(&c.BatchWait, DefaultBatchWait)
	set(&c.RetryMin, DefaultRetryMin)
	set(&c.RetryMax, DefaultRetryMax)
	set(&c.AttemptTimeout, DefaultAttemptTimeout)
	set(&c.DrainTimeout, DefaultDrainTimeout)
	set(&c.WatermarkCheck, DefaultWatermarkCheck)
	set(&c.CommitEvery, DefaultCommitEvery)
	return c
}

// Membership is this replica's membership of the consumer group (NewKafka returns one).
type Membership interface {
	// Next blocks until the group gives this member a generation.
	Next(ctx context.Context) (Generation, error)
}

// Generation is one assignment of partitions by the group; it ends at the next rebalance.
type Generation interface {
	// Partitions are this member's partitions of topic votes.
	Partitions() []int
	// Start runs fn with a context that ends with the generation. The group waits for every fn
	// to return before it rebalances or lets this member leave.
	Start(fn func(ctx context.Context))
	// Commit commits next as partition's next offset to read.
	Commit(partition int, next int64) error
}

// Partitions reads partitions of topic votes from chosen offsets (NewKafka returns one).
type Partitions interface {
	// Open returns a reader of partition from offset.
	Open(partition int, offset int64) PartitionReader
	// Earliest returns the first offset partition still holds (retention deletes older ones).
	Earliest(ctx context.Context, partition int) (int64, error)
}

// PartitionReader reads one partition in batches (over a *kafka.Reader without a group).
type PartitionReader interface {
	// Fetch returns the next records in offset order: at least one and at most most, taking
	// more that arrive within wait of the first; or none if idle passes without a record. It
	// fails when a fetch fails (call it again) or ctx ends before a record came.
	Fetch(ctx context.Context, most int, wait, idle time.Duration) ([]Fetched, error)
	Close() error
}

// Fetched is a record and when the reader fetched it from Kafka.
type Fetched struct {
	kafka.Message
	At time.Time
}

// Counter applies votes to the counts (a *counts.Store).
type Counter interface {
	Applied(ctx context.Context, partition int) (int64, error)
	Apply(ctx context.Context, partition int, expected, through int64, votes []counts.Vote) (counts.Result, error)
}

// LogWriter stores vote logs and returns the log stored under each one's vote id (a
// *votelog.Store).
type LogWriter interface {
	Insert(ctx context.Context, logs []votelog.Log) (stored []votelog.Log, err error)
}

// DeadLetterWriter writes to the dead-letter topic and returns once the records are acknowledged
// (a *kafka.Writer for queue.DeadLetterTopic with RequiredAcks: kafka.RequireAll).
type DeadLetterWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Deps are what the loop reads from and writes to.
type Deps struct {
	Group       Membership
	Partitions  Partitions
	Counts      Counter
	Logs        LogWriter
	DeadLetters DeadLetterWriter
	Health      *readiness.Checks
	Metrics     *Metrics
	Log         *slog.Logger
	// Now is the clock of the logs' counted_at; time.Now if nil.
	Now func() time.Time
	// Topic refuses partitions that are not the ones Redis's watermarks were counted from
	// (topic.go); nil only in the loop's unit tests, whose Kafka and Redis are played.
	Topic *TopicCheck
}

// Names of the write targets, in metrics and health checks.
const (
	targetRedis  = "redis"
	targetMongo  = "mongo"
	targetDLQ    = "dlq"
	targetCommit = "commit"
	targetKafka  = "kafka"
	checkGroup   = "kafka group"
)

// Loop consumes topic votes; see the package documentation.
type Loop struct {
	cfg Config
	Deps

	lagMu sync.Mutex
	lag   map[int]*partitionLag

	failMu   sync.Mutex
	failures map[string]int // per write target, the retries failing now (failing)
}

type partitionLag struct{ end, next int64 }

// New returns a loop; Run starts it.
func New(cfg Config, d Deps) *Loop {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Loop{cfg: cfg.withDefaults(), Deps: d, lag: map[int]*partitionLag{}, failures: map[string]int{}}
}

// Run takes part in the group until ctx is done and returns nil. The partitions' batches in hand
// are finished and committed by then or soon after (for up to DrainTimeout): the caller closes
// the group, which waits for them, and leaves it.
func (l *Loop) Run(ctx context.Context) error {
	delay := l.cfg.RetryMin
	for {
		gen, err := l.Group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) {
				return fmt.Errorf("consumer group: %w", err)
			}
			l.Health.Set(checkGroup, err)
			l.Log.Warn("joining the consumer group failed; retrying", "err", err, "retry_in", delay)
			if !sleep(ctx, delay) {
				return nil
			}
			delay = min(2*delay, l.cfg.RetryMax)
			continue
		}
		delay = l.cfg.RetryMin
		l.Health.Set(checkGroup, nil)
		parts := gen.Partitions()
		l.Log.Info("joined a generation of the group", "partitions", parts)
		for _, p := range parts {
			gen.Start(func(genCtx context.Context) { l.partition(ctx, genCtx, gen, p) })
		}
	}
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
