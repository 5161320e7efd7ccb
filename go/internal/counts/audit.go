package counts

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Counts are the counts that never expire: what the audit (go/cmd/audit) recounts from the logs.
type Counts struct {
	Total int64
	// ByBand is BandKey: band → votes.
	ByBand map[string]int64
	// ByAlbum is AlbumKey: AlbumField(band, album) → votes.
	ByAlbum map[string]int64
	// BandAlbums is BandAlbumsKey(band) for every band: band → album → votes.
	BandAlbums map[string]map[string]int64
}

// Add counts n votes for album by band.
func (c *Counts) Add(band, album string, n int64) {
	if c.ByBand == nil {
		c.ByBand, c.ByAlbum, c.BandAlbums = map[string]int64{}, map[string]int64{}, map[string]map[string]int64{}
	}
	c.Total += n
	c.ByBand[band] += n
	c.ByAlbum[AlbumField(band, album)] += n
	if c.BandAlbums[band] == nil {
		c.BandAlbums[band] = map[string]int64{}
	}
	c.BandAlbums[band][album] += n
}

// Bands lists, sorted, every band with albums counted in any of cs.
func Bands(cs ...Counts) []string {
	set := map[string]bool{}
	for _, c := range cs {
		for b := range c.BandAlbums {
			set[b] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Snapshot is the counts and the partitions' watermarks, read at one instant: the counts are
// exactly those of the records at or below the watermarks.
type Snapshot struct {
	// Applied is each partition's watermark (partitions with none are absent).
	Applied map[int]int64
	// Partitions is how many partitions the topic has: Replace checks that each of them still
	// has the watermark it had, or still none.
	Partitions int
	Counts
}

//go:embed snapshot.lua
var snapshotSource string

// Snapshot reads the counts and the watermarks at one instant, in one script. partitions is how
// many partitions topic votes has.
func (s *Store) Snapshot(ctx context.Context, partitions int) (Snapshot, error) {
	res, err := redis.NewScript(snapshotSource).Run(ctx, s.rdb, []string{TotalKey, BandKey, AlbumKey},
		appliedPrefix, bandAlbumsPrefix, partitions).Slice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("read the counts: %w", err)
	}
	if len(res) != 5 {
		return Snapshot{}, fmt.Errorf("read the counts: the script returned %d values", len(res))
	}
	snap := Snapshot{Applied: map[int]int64{}, Partitions: partitions, Counts: Counts{
		ByBand: map[string]int64{}, ByAlbum: map[string]int64{}, BandAlbums: map[string]map[string]int64{},
	}}
	var errs []error
	marks, _ := res[0].([]any)
	for i := 0; i+1 < len(marks); i += 2 {
		k, _ := marks[i].(string)
		v, _ := marks[i+1].(string)
		p, err1 := strconv.Atoi(strings.TrimPrefix(k, appliedPrefix))
		w, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("%s = %q: not a partition's watermark", k, v))
			continue
		}
		snap.Applied[p] = w
	}
	if v, ok := res[1].(string); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		errs = append(errs, wrapIf(err, TotalKey))
		snap.Total = n
	}
	errs = append(errs, readInts(flatHash(res[2]), snap.ByBand, BandKey), readInts(flatHash(res[3]), snap.ByAlbum, AlbumKey))
	bands, _ := res[4].([]any)
	for i := 0; i+1 < len(bands); i += 2 {
		k, _ := bands[i].(string)
		m := map[string]int64{}
		errs = append(errs, readInts(flatHash(bands[i+1]), m, k))
		snap.BandAlbums[strings.TrimPrefix(k, bandAlbumsPrefix)] = m
	}
	return snap, errors.Join(errs...)
}

// flatHash is an HGETALL reply from a script: field, value, field, value...
func flatHash(v any) map[string]string {
	flat, _ := v.([]any)
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[f] = v
	}
	return m
}

func readInts(from map[string]string, to map[string]int64, key string) error {
	var errs []error
	for f, v := range from {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%s] = %q: not an integer", key, f, v))
			continue
		}
		to[f] = n
	}
	return errors.Join(errs...)
}

func wrapIf(err error, key string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// ErrMoved says the watermarks changed since the snapshot a repair was computed from: a consumer
// applied batches meanwhile, so the new counts would be stale.
var ErrMoved = errors.New("the watermarks moved since the snapshot: consumers are applying votes")

//go:embed replace.lua
var replaceSource string

// Replace rewrites every count of Counts (TotalKey, BandKey, AlbumKey and each band's
// BandAlbumsKey, dropping bands c does not have) with c, in one script, if every partition's
// watermark is still what it was at (a partition that had none still has none); otherwise it
// changes nothing and returns ErrMoved. The 10-second buckets are left as they are.
func (s *Store) Replace(ctx context.Context, at Snapshot, c Counts) error {
	set := map[int]bool{}
	for p := range at.Partitions {
		set[p] = true
	}
	for p := range at.Applied {
		set[p] = true
	}
	parts := slices.Sorted(maps.Keys(set))
	keys := make([]string, 0, len(parts)+3+len(at.BandAlbums)+len(c.BandAlbums))
	expected := make([]*string, 0, len(parts))
	for _, p := range parts {
		keys = append(keys, AppliedKey(p))
		if w, ok := at.Applied[p]; ok {
			v := strconv.FormatInt(w, 10)
			expected = append(expected, &v)
		} else {
			expected = append(expected, nil)
		}
	}
	keys = append(keys, TotalKey, BandKey, AlbumKey)
	bands := Bands(at.Counts, c)
	hashes := make([]map[string]int64, 0, 2+len(bands))
	hashes = append(hashes, c.ByBand, c.ByAlbum)
	for _, b := range bands {
		keys = append(keys, BandAlbumsKey(b))
		hashes = append(hashes, c.BandAlbums[b])
	}
	payload, err := json.Marshal(struct {
		Expected []*string          `json:"expected"`
		Total    string             `json:"total"`
		Hashes   []map[string]int64 `json:"hashes"`
	}{expected, strconv.FormatInt(c.Total, 10), hashes})
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	ok, err := redis.NewScript(replaceSource).Run(ctx, s.rdb, keys, len(parts), payload).Int()
	if err != nil {
		return fmt.Errorf("repair the counts: %w", err)
	}
	if ok != 1 {
		return ErrMoved
	}
	return nil
}
