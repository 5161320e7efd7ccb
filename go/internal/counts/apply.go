package counts

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Vote is what the counts need of one record of the votes topic.
type Vote struct {
	Offset     int64
	Band       string
	Album      string
	AcceptedAt time.Time
}

// Result says what became of a batch's votes.
type Result struct {
	// Counted votes were added to every count.
	Counted int
	// Replayed votes were at or below the partition's watermark: applied before.
	Replayed int
	// Behind says Redis's watermark was below the one the caller expected: Redis lost applied
	// batches, and nothing was applied. The caller replays the partition from Applied+1.
	Behind bool
	// Applied is the partition's watermark after the call (-1: nothing applied yet).
	Applied int64
}

//go:embed apply.lua
var applySource string

// Store applies batches of votes to the counts in Redis.
type Store struct {
	rdb   redis.Cmdable
	apply *redis.Script
	// now is the clock of the accept-to-counted classes (LatencyKey).
	now func() time.Time
}

// New returns a Store writing through rdb.
func New(rdb redis.Cmdable) *Store {
	return &Store{rdb: rdb, apply: redis.NewScript(applySource), now: time.Now}
}

// Applied returns the highest offset of partition whose record is applied, or -1 if none is.
func (s *Store) Applied(ctx context.Context, partition int) (int64, error) {
	v, err := s.rdb.Get(ctx, AppliedKey(partition)).Result()
	if errors.Is(err, redis.Nil) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read watermark of partition %d: %w", partition, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("watermark of partition %d is %q: %w", partition, v, err)
	}
	return n, nil
}

// Apply counts votes, records of partition in offset order, and advances the partition's
// watermark to through (the batch's last offset, which may belong to a record that is not
// counted), all in one atomic script: either all of it happens or none does, so the call can be
// repeated after any failure. Votes at or below the watermark are skipped. expected is the
// watermark the caller last read or wrote; if Redis's is lower, Redis went back in time and
// nothing is applied (Result.Behind). Each counted vote is also counted in LatencyKey's class of
// its time from accept to this call.
func (s *Store) Apply(ctx context.Context, partition int, expected, through int64, votes []Vote) (Result, error) {
	now := s.now()
	keys := make([]string, 0, 5+2*len(votes))
	keys = append(keys, AppliedKey(partition), TotalKey, BandKey, AlbumKey, LatencyKey(now))
	args := make([]any, 0, 3+6*len(votes))
	args = append(args, strconv.FormatInt(through, 10), strconv.FormatInt(expected, 10), BucketStart(now).Add(BucketTTL).Unix())
	for _, v := range votes {
		if v.Offset > through {
			return Result{}, fmt.Errorf("apply: vote at offset %d is past the batch's last offset %d", v.Offset, through)
		}
		keys = append(keys, BandAlbumsKey(v.Band), BucketKey(v.AcceptedAt))
		args = append(args, strconv.FormatInt(v.Offset, 10), v.Band, v.Album, AlbumField(v.Band, v.Album),
			BucketStart(v.AcceptedAt).Add(BucketTTL).Unix(), LatencyField(now.Sub(v.AcceptedAt)))
	}
	res, err := s.apply.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("apply %d votes of partition %d: %w", len(votes), partition, err)
	}
	if len(res) != 4 {
		return Result{}, fmt.Errorf("apply: script returned %v", res)
	}
	counted, ok1 := res[0].(int64)
	replayed, ok2 := res[1].(int64)
	behind, ok3 := res[2].(int64)
	watermark, ok4 := res[3].(string)
	applied, err := strconv.ParseInt(watermark, 10, 64)
	if !ok1 || !ok2 || !ok3 || !ok4 || err != nil {
		return Result{}, fmt.Errorf("apply: script returned %v", res)
	}
	return Result{Counted: int(counted), Replayed: int(replayed), Behind: behind == 1, Applied: applied}, nil
}
