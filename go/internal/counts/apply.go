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
	VoteID     string
	Band       string
	Album      string
	AcceptedAt time.Time
}

// Result says what became of a batch's votes.
type Result struct {
	// Counted votes were added to every count.
	Counted int
	// Duplicates carried a vote id already counted under another record.
	Duplicates int
	// Replayed votes were at or below the partition's watermark: applied before.
	Replayed int
}

//go:embed apply.lua
var applySource string

// Store applies batches of votes to the counts in Redis.
type Store struct {
	rdb   redis.Cmdable
	apply *redis.Script
}

// New returns a Store writing through rdb.
func New(rdb redis.Cmdable) *Store {
	return &Store{rdb: rdb, apply: redis.NewScript(applySource)}
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
// watermark to through (the batch's last offset, which may belong to a record that is not a
// vote), all in one atomic script: either all of it happens or none does, so the call can be
// repeated after any failure. Votes at or below the watermark and vote ids already counted are
// skipped.
func (s *Store) Apply(ctx context.Context, partition int, through int64, votes []Vote) (Result, error) {
	keys := make([]string, 0, 4+3*len(votes))
	keys = append(keys, AppliedKey(partition), TotalKey, BandKey, AlbumKey)
	args := make([]any, 0, 3+5*len(votes))
	args = append(args, strconv.FormatInt(through, 10), int64(MarkerTTL/time.Second), partition)
	for _, v := range votes {
		if v.Offset > through {
			return Result{}, fmt.Errorf("apply: vote at offset %d is past the batch's last offset %d", v.Offset, through)
		}
		keys = append(keys, MarkerKey(v.VoteID), BandAlbumsKey(v.Band), BucketKey(v.AcceptedAt))
		args = append(args, strconv.FormatInt(v.Offset, 10), v.Band, v.Album, AlbumField(v.Band, v.Album),
			BucketStart(v.AcceptedAt).Add(BucketTTL).Unix())
	}
	res, err := s.apply.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("apply %d votes of partition %d: %w", len(votes), partition, err)
	}
	if len(res) != 3 {
		return Result{}, fmt.Errorf("apply: script returned %v", res)
	}
	return Result{Counted: int(res[0]), Duplicates: int(res[1]), Replayed: int(res[2])}, nil
}
