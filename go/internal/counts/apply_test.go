package counts

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tally-voting/tally/go/test/testenv"
)

var nextDB atomic.Int32

// openRedis returns a client of the Redis the stack harness started, on an empty database of
// the test's own.
func openRedis(t *testing.T) *redis.Client {
	t.Helper()
	opts := testenv.RedisOptions(t)
	opts.DB = int(nextDB.Add(1)) % 16
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return rdb
}

func vote(offset int64, band, album string, at time.Time) Vote {
	return Vote{Offset: offset, Band: band, Album: album, AcceptedAt: at}
}

// apply applies votes as a consumer that last saw the watermark expected.
func apply(t *testing.T, s *Store, partition int, expected, through int64, votes ...Vote) Result {
	t.Helper()
	r, err := s.Apply(context.Background(), partition, expected, through, votes)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return r
}

func get(t *testing.T, rdb *redis.Client, key string) string {
	t.Helper()
	v, err := rdb.Get(context.Background(), key).Result()
	if err != nil && err != redis.Nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

func hash(t *testing.T, rdb *redis.Client, key string) map[string]string {
	t.Helper()
	v, err := rdb.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("HGETALL %s: %v", key, err)
	}
	return v
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestApplySkipsAtOrBelowWatermark(t *testing.T) {
	rdb := openRedis(t)
	s := New(rdb)
	ctx := context.Background()
	now := time.Now()
	if w, err := s.Applied(ctx, 2); err != nil || w != -1 {
		t.Fatalf("fresh watermark = %d, %v; want -1", w, err)
	}
	batch := func(from, to int64) []Vote {
		var vs []Vote
		for o := from; o <= to; o++ {
			vs = append(vs, vote(o, "Alux Nahual", "Hijos del Sol", now))
		}
		return vs
	}
	if r := apply(t, s, 2, -1, 4, batch(0, 4)...); r != (Result{Counted: 5, Applied: 4}) {
		t.Fatalf("first batch: %+v", r)
	}
	// The same batch again, as after a crash before the Kafka commit: nothing changes.
	if r := apply(t, s, 2, -1, 4, batch(0, 4)...); r != (Result{Replayed: 5, Applied: 4}) {
		t.Fatalf("replayed batch: %+v", r)
	}
	// Overlapping: 3 and 4 were applied, 5 to 7 are new.
	if r := apply(t, s, 2, 4, 7, batch(3, 7)...); r != (Result{Counted: 3, Replayed: 2, Applied: 7}) {
		t.Fatalf("overlapping batch: %+v", r)
	}
	// A stale consumer applying an old batch late neither counts nor lowers the watermark.
	if r := apply(t, s, 2, -1, 1, batch(0, 1)...); r != (Result{Replayed: 2, Applied: 7}) {
		t.Fatalf("stale batch: %+v", r)
	}
	if w, err := s.Applied(ctx, 2); err != nil || w != 7 {
		t.Fatalf("watermark = %d, %v; want 7", w, err)
	}
	// Other partitions have watermarks of their own.
	if r := apply(t, s, 0, -1, 0, vote(0, "Alux Nahual", "Hijos del Sol", now)); r != (Result{Counted: 1, Applied: 0}) {
		t.Fatalf("partition 0: %+v", r)
	}
	// A batch without votes to count (poison, or later records of counted vote ids) still moves
	// the watermark.
	apply(t, s, 2, 7, 9)
	if w, _ := s.Applied(ctx, 2); w != 9 {
		t.Fatalf("watermark after an empty batch = %d, want 9", w)
	}
	if got := get(t, rdb, TotalKey); got != "9" {
		t.Fatalf("total = %s, want 9", got)
	}
	if got := hash(t, rdb, BandKey); !sameMap(got, map[string]string{"Alux Nahual": "9"}) {
		t.Fatalf("by band = %v", got)
	}
	// Offsets beyond 2^53 would lose digits as Lua numbers; they stay strings.
	big := int64(1) << 50
	apply(t, s, 5, -1, big+3, vote(big+3, "Alux Nahual", "Hijos del Sol", now))
	if w, _ := s.Applied(ctx, 5); w != big+3 {
		t.Fatalf("large watermark = %d, want %d", w, big+3)
	}
	if _, err := s.Apply(ctx, 1, -1, 3, []Vote{vote(4, "a", "b", now)}); err == nil {
		t.Fatal("a vote past the batch's last offset was accepted")
	}
}

// Redis holds a lower watermark than the consumer wrote (it lost its last second, or was
// restored from a backup): nothing is applied, and the caller learns the watermark to replay from.
func TestApplyReportsRedisBehind(t *testing.T) {
	rdb := openRedis(t)
	s := New(rdb)
	now := time.Now()
	apply(t, s, 3, -1, 9, vote(9, "Alux Nahual", "Leyenda", now))
	rdb.Set(context.Background(), AppliedKey(3), "4", 0) // as restored from an older copy
	if r := apply(t, s, 3, 9, 12, vote(12, "Alux Nahual", "Leyenda", now)); r != (Result{Behind: true, Applied: 4}) {
		t.Fatalf("apply on a Redis behind: %+v", r)
	}
	rdb.Del(context.Background(), AppliedKey(3)) // lost altogether
	if r := apply(t, s, 3, 9, 12); r != (Result{Behind: true, Applied: -1}) {
		t.Fatalf("apply on an empty Redis: %+v", r)
	}
	if got := get(t, rdb, TotalKey); got != "1" {
		t.Fatalf("total = %s, want 1: nothing applied while behind", got)
	}
}

func TestApplyCountsEveryKey(t *testing.T) {
	rdb := openRedis(t)
	s := New(rdb)
	ctx := context.Background()
	b0 := BucketStart(time.Now())
	b1 := b0.Add(-BucketWidth)
	old := b0.Add(-2 * BucketTTL)  // its bucket has expired already
	counted := b0.Add(BucketWidth) // the count's clock: 1 ms to 20 s after the votes' accepts
	s.now = func() time.Time { return counted }
	r := apply(t, s, 0, -1, 5,
		vote(0, "Alux Nahual", "Hijos del Sol", b0),
		vote(1, "Alux Nahual", "Hijos del Sol", b0.Add(9999*time.Millisecond)),
		vote(2, "Alux Nahual", "Alux Nahual", b1.Add(5*time.Second)),
		vote(3, "Bohemia Suburbana", "Hijos del Sol", b1),
		vote(4, "Bohemia Suburbana", "Eres", old),
	)
	if r != (Result{Counted: 5, Applied: 5}) {
		t.Fatalf("apply: %+v", r)
	}
	checks := []struct {
		key  string
		want map[string]string
	}{
		{BandKey, map[string]string{"Alux Nahual": "3", "Bohemia Suburbana": "2"}},
		{AlbumKey, map[string]string{
			"Alux Nahual — Hijos del Sol": "2", "Alux Nahual — Alux Nahual": "1",
			"Bohemia Suburbana — Hijos del Sol": "1", "Bohemia Suburbana — Eres": "1",
		}},
		{BandAlbumsKey("Alux Nahual"), map[string]string{"Hijos del Sol": "2", "Alux Nahual": "1"}},
		{BandAlbumsKey("Bohemia Suburbana"), map[string]string{"Hijos del Sol": "1", "Eres": "1"}},
		{BucketKey(b0), map[string]string{"Alux Nahual": "2"}},
		{BucketKey(b1), map[string]string{"Alux Nahual": "1", "Bohemia Suburbana": "1"}},
		{BucketKey(old), map[string]string{}},
		{LatencyKey(counted), map[string]string{"10000": "1", "5": "1", "+Inf": "3"}},
	}
	for _, c := range checks {
		if got := hash(t, rdb, c.key); !sameMap(got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, got, c.want)
		}
	}
	if got := get(t, rdb, TotalKey); got != "5" {
		t.Errorf("total = %s, want 5", got)
	}
	for _, b := range []time.Time{b0, b1} {
		at, err := rdb.ExpireTime(ctx, BucketKey(b)).Result()
		if want := b.Add(BucketTTL).Unix(); err != nil || int64(at/time.Second) != want {
			t.Errorf("%s expires at %v (%v), want %d", BucketKey(b), at, err, want)
		}
	}
	at, err := rdb.ExpireTime(ctx, LatencyKey(counted)).Result()
	if want := counted.Add(BucketTTL).Unix(); err != nil || int64(at/time.Second) != want {
		t.Errorf("%s expires at %v (%v), want %d", LatencyKey(counted), at, err, want)
	}
}

// Every key an apply writes is in the contract, with the contract's type, field and expiry.
func TestRedisHoldsTheContractLayout(t *testing.T) {
	rdb := openRedis(t)
	s := New(rdb)
	ctx := context.Background()
	c := loadContract(t)
	ex := c.Examples
	now := time.Now()
	if now.Sub(BucketStart(now)) > BucketWidth-time.Second { // the count's bucket must be the vote's
		time.Sleep(time.Second)
		now = time.Now()
	}
	s.now = func() time.Time { return now }
	ex["bucket"] = strconv.FormatInt(BucketStart(now).Unix(), 10) // the example's bucket is long expired
	partition, _ := strconv.Atoi(ex["partition"])
	// Accepted 200 ms before its count: the example's accept-to-counted class, 250 ms.
	apply(t, s, partition, -1, 42, vote(42, ex["band"], ex["album"], now.Add(-200*time.Millisecond)))
	// The consumer anchors the partitions it reads beside its batches (go/internal/consume).
	if err := s.SetAnchor(ctx, partition, 42, "vote-42"); err != nil {
		t.Fatalf("set anchor: %v", err)
	}

	var patterns []*regexp.Regexp
	for _, k := range c.Keys {
		key := render(t, k.Template, ex)
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil || typ != k.Type {
			t.Errorf("%s: %s has type %q (%v), contract says %q", k.Name, key, typ, err, k.Type)
		}
		if k.Field != "" {
			if ok, err := rdb.HExists(ctx, key, render(t, k.Field, ex)).Result(); err != nil || !ok {
				t.Errorf("%s: %s has no field %q (%v)", k.Name, key, render(t, k.Field, ex), err)
			}
		}
		ttl, err := rdb.TTL(ctx, key).Result()
		switch {
		case err != nil:
			t.Errorf("%s: TTL: %v", k.Name, err)
		case k.Expiry == nil && ttl != -1:
			t.Errorf("%s: %s expires in %v, contract says never", k.Name, key, ttl)
		case k.Expiry != nil && (ttl <= 0 || ttl > time.Duration(k.Expiry.Seconds)*time.Second):
			t.Errorf("%s: %s expires in %v, contract says within %d s", k.Name, key, ttl, k.Expiry.Seconds)
		}
		parts := placeholder.Split(k.Template, -1)
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		patterns = append(patterns, regexp.MustCompile("^"+strings.Join(parts, ".+")+"$"))
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		matched := false
		for _, p := range patterns {
			matched = matched || p.MatchString(key)
		}
		if !matched {
			t.Errorf("Redis holds %q, which matches no template of proto/redis_keys.json", key)
		}
	}
	if len(keys) != len(c.Keys) {
		t.Errorf("one vote wrote %d keys, the contract lists %d: %v", len(keys), len(c.Keys), keys)
	}
}
