package counts

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The snapshot reads the counts with their watermarks; a repair from it rewrites every count
// that never expires (dropping a band the logs do not have) and leaves the buckets; a repair
// after a consumer applied a batch changes nothing.
func TestSnapshotAndReplace(t *testing.T) {
	rdb := openRedis(t)
	s := New(rdb)
	ctx := context.Background()
	now := time.Now()
	apply(t, s, 0, -1, 2, vote(0, "Alux Nahual", "Leyenda", now), vote(1, "Alux Nahual", "Conquista", now), vote(2, "Nobody", "Nothing", now))
	apply(t, s, 4, -1, 0, vote(0, "Alux Nahual", "Leyenda", now))
	snap, err := s.Snapshot(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Total != 4 || snap.ByBand["Alux Nahual"] != 3 || snap.BandAlbums["Nobody"]["Nothing"] != 1 ||
		snap.ByAlbum[AlbumField("Alux Nahual", "Leyenda")] != 2 || len(snap.Applied) != 2 || snap.Applied[0] != 2 || snap.Applied[4] != 0 {
		t.Fatalf("snapshot = %+v", snap)
	}

	var fixed Counts
	fixed.Add("Alux Nahual", "Leyenda", 5)
	if err := s.Replace(ctx, snap, fixed); err != nil {
		t.Fatalf("replace: %v", err)
	}
	again, err := s.Snapshot(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if again.Total != 5 || len(again.ByBand) != 1 || again.ByBand["Alux Nahual"] != 5 || len(again.ByAlbum) != 1 ||
		len(again.BandAlbums) != 1 || again.BandAlbums["Alux Nahual"]["Leyenda"] != 5 || len(again.BandAlbums["Alux Nahual"]) != 1 {
		t.Fatalf("after the repair: %+v", again.Counts)
	}
	if n, _ := rdb.Exists(ctx, BandAlbumsKey("Nobody"), BandAlbumsKey("Alux Nahual")).Result(); n != 1 {
		t.Fatalf("%d of the two band keys exist, want only Alux Nahual's", n)
	}
	if got := hash(t, rdb, BucketKey(now)); got["Nobody"] != "1" {
		t.Fatalf("the repair touched the bucket: %v", got)
	}

	// A consumer applies a batch after the snapshot: the repair would overwrite it.
	apply(t, s, 4, 0, 1, vote(1, "Alux Nahual", "Conquista", now))
	if err := s.Replace(ctx, again, fixed); !errors.Is(err, ErrMoved) {
		t.Fatalf("replace after a batch = %v, want ErrMoved", err)
	}
	if got := get(t, rdb, TotalKey); got != "6" {
		t.Fatalf("total = %s after a refused repair, want 6", got)
	}

	// A partition without a watermark at the snapshot gets its first batch (as after a Redis
	// loss): the repair would drop it, and its watermark would keep it from being replayed.
	again, err = s.Snapshot(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := again.Applied[5]; ok {
		t.Fatalf("partition 5 has a watermark before its first batch: %v", again.Applied)
	}
	apply(t, s, 5, -1, 0, vote(0, "Alux Nahual", "Conquista", now))
	if err := s.Replace(ctx, again, fixed); !errors.Is(err, ErrMoved) {
		t.Fatalf("replace after a partition's first batch = %v, want ErrMoved", err)
	}
	if got := get(t, rdb, TotalKey); got != "7" {
		t.Fatalf("total = %s after a refused repair, want 7", got)
	}
}

// The audit runs as the consumer's Redis user (k8s/manifests/audit.yaml), whose ACL refuses
// @dangerous commands such as KEYS (its keys and commands in proto/redis_keys.json, from which
// the deployment makes the user too): the snapshot must read the counts under those rules. On the
// real node the audit CronJob failed with "User consumer has no permissions to run the 'keys'
// command" while the script listed keys.
func TestSnapshotAsTheConsumersRedisUser(t *testing.T) {
	rdb := openRedis(t)
	ctx := context.Background()
	now := time.Now()
	apply(t, New(rdb), 1, -1, 1, vote(0, "Alux Nahual", "Leyenda", now), vote(1, "Bohemia Suburbana", "Tierra Santa", now))
	user := "snapshot-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	rules := append([]any{"ACL", "SETUSER", user, "on", ">test-password"}, loadContract(t).rulesOf(t, "consumer")...)
	// SELECT only for the test server's numbered databases.
	rules = append(rules, "+select")
	if err := rdb.Do(ctx, rules...).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	opts := *rdb.Options()
	opts.Username, opts.Password = user, "test-password"
	as := redis.NewClient(&opts)
	defer as.Close()
	snap, err := New(as).Snapshot(ctx, 6)
	if err != nil {
		t.Fatalf("snapshot as a user with the consumer's ACL: %v", err)
	}
	if snap.Total != 2 || snap.Applied[1] != 1 || len(snap.Applied) != 1 || snap.BandAlbums["Bohemia Suburbana"]["Tierra Santa"] != 1 || len(snap.BandAlbums) != 2 {
		t.Fatalf("snapshot as the consumer's user = %+v", snap)
	}
}
