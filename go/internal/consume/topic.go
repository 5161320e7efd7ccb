package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/readiness"
)

// Reading a partition from Redis's watermark + 1 is right only for the partition the watermark
// was counted from. If Kafka's data was lost and topic votes made anew (its volumes wiped and
// the brokers formatted again), offsets start again at 0, and reading on from the watermark
// would skip every new record at or below it: votes lost without a word. So before a partition
// is read, TopicCheck compares it with what Redis counted:
//
//   - its end offset must be past the watermark: a partition holding fewer records than were
//     counted from it is another one;
//   - the record at its anchor (Redis tally:anchor:votes:<p>: the offset and key of one record
//     counted from it, moved up to the watermark every AnchorEvery while it is read) must still be
//     that record.
//
// A partition that fails is not read: the consumer logs an error, is not ready (the readiness
// check "votes partition <p>" fails) and checks again every AnchorEvery, so the votes wait in Kafka until an
// operator decides (docs/data.md: restore Kafka's data, or count the new topic from its start
// by deleting the partition's watermark and anchor).

// AnchorEvery is how often a partition being read moves its anchor up to the watermark, and how
// often a refused partition is checked again.
const AnchorEvery = 5 * time.Second

// ErrOtherTopic says a partition is not the one Redis's watermark was counted from.
var ErrOtherTopic = errors.New("topic votes is not the one Redis's counts were made from (re-created, or its data lost)")

// Anchors are Redis's side: the watermark and one counted record per partition (a *counts.Store).
type Anchors interface {
	Applied(ctx context.Context, partition int) (int64, error)
	Anchor(ctx context.Context, partition int) (offset int64, key string, ok bool, err error)
	SetAnchor(ctx context.Context, partition int, offset int64, key string) error
}

// TopicReader is Kafka's side: what a partition of topic votes holds now.
type TopicReader interface {
	// Bounds are the partition's first offset still held and the offset its next record gets.
	Bounds(ctx context.Context, partition int) (earliest, end int64, err error)
	// KeyAt is the key of the record at offset.
	KeyAt(ctx context.Context, partition int, offset int64) (string, error)
}

// TopicCheck guards the partitions of one consumer (Deps.Topic).
type TopicCheck struct {
	Kafka   TopicReader
	Anchors Anchors
	Health  *readiness.Checks
	Log     *slog.Logger
}

// Guard returns once partition p may be read on from its watermark + 1, checking it again every
// AnchorEvery while it may not, and returns that watermark (applied, or what an operator reset it
// to meanwhile); then it keeps the partition's anchor at the watermark until ctx ends. It fails
// only when ctx ends first, and then leaves the partition's check passing.
func (c *TopicCheck) Guard(ctx context.Context, p int, applied int64) (int64, error) {
	check := fmt.Sprintf("votes partition %d", p)
	for {
		err := c.verify(ctx, p, applied)
		if err == nil {
			break
		}
		c.Health.Set(check, err)
		if errors.Is(err, ErrOtherTopic) {
			c.Log.Error("partition not read: reading it from Redis's watermark would skip its records silently; restore Kafka's data, or see docs/data.md to count this topic from its start",
				"partition", p, "watermark", applied, "err", err)
		} else {
			c.Log.Warn("cannot check the partition against Redis's watermark yet; retrying", "partition", p, "err", err)
		}
		if !sleep(ctx, AnchorEvery) {
			// The generation ended: the partition may go to another replica, which reports it if
			// it refuses it too; this one no longer holds it.
			c.Health.Set(check, nil)
			return 0, ctx.Err()
		}
		// An operator may have reset the partition's watermark meanwhile.
		if applied, err = c.Anchors.Applied(ctx, p); err != nil {
			applied = -2 // unknown: verify fails on Redis again
		}
	}
	c.Health.Set(check, nil)
	go c.keepAnchor(ctx, p)
	return applied, nil
}

// verify checks partition p against the watermark applied: nil, an ErrOtherTopic, or why it
// cannot tell.
func (c *TopicCheck) verify(ctx context.Context, p int, applied int64) error {
	if applied == -2 {
		return errors.New("Redis's watermark is unknown")
	}
	if applied < 0 { // nothing counted from this partition: any topic is the right one
		return nil
	}
	earliest, end, err := c.Kafka.Bounds(ctx, p)
	if err != nil {
		return err
	}
	if end <= applied {
		return fmt.Errorf("%w: Redis counted partition %d up to offset %d, but it ends at %d", ErrOtherTopic, p, applied, end)
	}
	offset, key, ok, err := c.Anchors.Anchor(ctx, p)
	if err != nil {
		return err
	}
	if !ok || offset < earliest || offset >= end {
		// No anchor yet (or retention deleted its record): the end offset is all there is to go by.
		return c.moveAnchor(ctx, p, applied, earliest)
	}
	got, err := c.Kafka.KeyAt(ctx, p, offset)
	if err != nil {
		return err
	}
	if got != key {
		return fmt.Errorf("%w: partition %d's record at offset %d has key %q, Redis counted one with key %q there", ErrOtherTopic, p, offset, got, key)
	}
	return c.moveAnchor(ctx, p, applied, earliest)
}

// moveAnchor sets partition p's anchor to the record at the watermark, if Kafka still holds it.
func (c *TopicCheck) moveAnchor(ctx context.Context, p int, applied, earliest int64) error {
	if applied < earliest {
		return nil
	}
	key, err := c.Kafka.KeyAt(ctx, p, applied)
	if err != nil {
		return err
	}
	return c.Anchors.SetAnchor(ctx, p, applied, key)
}

// keepAnchor moves the anchor up to the watermark every AnchorEvery, after checking the old one
// still holds: a partition that changed under the reader is reported, and refused at its next
// start (a lost Kafka restarts its brokers, which starts a new generation of the group).
func (c *TopicCheck) keepAnchor(ctx context.Context, p int) {
	check := fmt.Sprintf("votes partition %d", p)
	for sleep(ctx, AnchorEvery) {
		applied, err := c.Anchors.Applied(ctx, p)
		if err != nil {
			continue
		}
		err = c.verify(ctx, p, applied)
		if errors.Is(err, ErrOtherTopic) {
			c.Health.Set(check, err)
			c.Log.Error("the partition being read is not the one Redis's counts were made from", "partition", p, "err", err)
		}
	}
}

// kafkaTopic reads topic votes through a kafka.Client.
type kafkaTopic struct{ client *kafka.Client }

// NewTopicReader reads topic votes on brokers.
func NewTopicReader(brokers []string) TopicReader {
	return kafkaTopic{&kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}}
}

func (k kafkaTopic) Bounds(ctx context.Context, p int) (earliest, end int64, err error) {
	res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{queue.VotesTopic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)}},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("offsets of partition %d: %w", p, err)
	}
	for _, po := range res.Topics[queue.VotesTopic] {
		if po.Partition == p {
			if po.Error != nil {
				return 0, 0, fmt.Errorf("offsets of partition %d: %w", p, po.Error)
			}
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("offsets of partition %d: not in the answer", p)
}

func (k kafkaTopic) KeyAt(ctx context.Context, p int, offset int64) (string, error) {
	res, err := k.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: queue.VotesTopic, Partition: p, Offset: offset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: time.Second,
	})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return "", fmt.Errorf("record %d of partition %d: %w", offset, p, err)
	}
	// A fetch answers whole batches, which may start before offset.
	for {
		r, err := res.Records.ReadRecord()
		if err != nil {
			return "", fmt.Errorf("record %d of partition %d: %w", offset, p, err)
		}
		if r.Offset < offset {
			continue
		}
		if r.Offset > offset || r.Key == nil {
			return "", fmt.Errorf("record %d of partition %d: not there or without a key (found offset %d)", offset, p, r.Offset)
		}
		key, err := io.ReadAll(r.Key)
		if err != nil {
			return "", fmt.Errorf("record %d of partition %d: %w", offset, p, err)
		}
		return string(key), nil
	}
}
