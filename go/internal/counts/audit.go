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

// Snapshot is the counts and the partitions' watermarks, read in one transaction: the counts are
// exactly those of the records at or below the watermarks.
type Snapshot struct {
	// Applied is each partition's watermark (partitions with none are absent).
	Applied map[int]int64
	Counts
}

// Snapshot reads the counts and the watermarks at one instant.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	appliedKeys, err := s.scan(ctx, appliedPrefix+"*")
	if err != nil {
		return Snapshot{}, err
	}
	bandKeys, err := s.scan(ctx, bandAlbumsPrefix+"*")
	if err != nil {
		return Snapshot{}, err
	}
	var (
		applied         = make([]*redis.StringCmd, len(appliedKeys))
		bandAlbums      = make([]*redis.MapStringStringCmd, len(bandKeys))
		total           *redis.StringCmd
		byBand, byAlbum *redis.MapStringStringCmd
	)
	_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		for i, k := range appliedKeys {
			applied[i] = tx.Get(ctx, k)
		}
		total = tx.Get(ctx, TotalKey)
		byBand = tx.HGetAll(ctx, BandKey)
		byAlbum = tx.HGetAll(ctx, AlbumKey)
		for i, k := range bandKeys {
			bandAlbums[i] = tx.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("read the counts: %w", err)
	}
	snap := Snapshot{Applied: map[int]int64{}, Counts: Counts{
		ByBand: map[string]int64{}, ByAlbum: map[string]int64{}, BandAlbums: map[string]map[string]int64{},
	}}
	var errs []error
	for i, k := range appliedKeys {
		p, err1 := strconv.Atoi(strings.TrimPrefix(k, appliedPrefix))
		w, err2 := strconv.ParseInt(applied[i].Val(), 10, 64)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("%s = %q: not a partition's watermark", k, applied[i].Val()))
			continue
		}
		snap.Applied[p] = w
	}
	if v := total.Val(); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		errs = append(errs, wrapIf(err, TotalKey))
		snap.Total = n
	}
	errs = append(errs, readInts(byBand.Val(), snap.ByBand, BandKey), readInts(byAlbum.Val(), snap.ByAlbum, AlbumKey))
	for i, k := range bandKeys {
		m := map[string]int64{}
		errs = append(errs, readInts(bandAlbums[i].Val(), m, k))
		snap.BandAlbums[strings.TrimPrefix(k, bandAlbumsPrefix)] = m
	}
	return snap, errors.Join(errs...)
}

func (s *Store) scan(ctx context.Context, pattern string) ([]string, error) {
	var keys []string
	iter := s.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", pattern, err)
	}
	slices.Sort(keys)
	return keys, nil
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
// BandAlbumsKey, dropping bands c does not have) with c, in one script, if the watermarks are
// still at; otherwise it changes nothing and returns ErrMoved. The 10-second buckets are left
// as they are.
func (s *Store) Replace(ctx context.Context, at Snapshot, c Counts) error {
	parts := slices.Sorted(maps.Keys(at.Applied))
	keys := make([]string, 0, len(parts)+3+len(at.BandAlbums)+len(c.BandAlbums))
	expected := make([]string, 0, len(parts))
	for _, p := range parts {
		keys = append(keys, AppliedKey(p))
		expected = append(expected, strconv.FormatInt(at.Applied[p], 10))
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
		Expected []string           `json:"expected"`
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
