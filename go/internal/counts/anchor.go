package counts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

const anchorPrefix = "tally:anchor:votes:"

// AnchorKey is a STRING "<offset>:<record key>": one record of a votes partition whose vote is
// counted, by which the consumer recognises the partition the watermarks were counted from
// (go/internal/consume, topic.go).
func AnchorKey(partition int) string { return anchorPrefix + strconv.Itoa(partition) }

// Anchor returns partition's anchor: a counted record's offset and key; ok is false if none.
func (s *Store) Anchor(ctx context.Context, partition int) (offset int64, key string, ok bool, err error) {
	v, err := s.rdb.Get(ctx, AnchorKey(partition)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("read anchor of partition %d: %w", partition, err)
	}
	o, k, found := strings.Cut(v, ":")
	offset, perr := strconv.ParseInt(o, 10, 64)
	if !found || perr != nil || offset < 0 {
		return 0, "", false, fmt.Errorf("anchor of partition %d: %q is not <offset>:<key>", partition, v)
	}
	return offset, k, true, nil
}

// SetAnchor makes the record at offset, with key, partition's anchor.
func (s *Store) SetAnchor(ctx context.Context, partition int, offset int64, key string) error {
	if err := s.rdb.Set(ctx, AnchorKey(partition), strconv.FormatInt(offset, 10)+":"+key, 0).Err(); err != nil {
		return fmt.Errorf("set anchor of partition %d: %w", partition, err)
	}
	return nil
}
