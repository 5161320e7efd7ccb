package votelog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/test/runfile"
)

// openStore connects to the MongoDB-wire server the stack harness started and returns a Store
// over a database of the test's own.
func openStore(tb testing.TB) (*Store, *mongo.Database) {
	tb.Helper()
	url := os.Getenv("MONGO_URL")
	if url == "" {
		tb.Fatal("MONGO_URL is not set: run this test through its stack_test target")
	}
	client, err := mongo.Connect(options.Client().ApplyURI(url))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { client.Disconnect(context.Background()) })
	db := client.Database(fmt.Sprintf("votelog_%d", time.Now().UnixNano()))
	return New(db), db
}

// recentDB is where a Store over db keeps logs_recent.
func recentDB(db *mongo.Database) *mongo.Database {
	return db.Client().Database(RecentDatabaseOf(db.Name()))
}

var epoch = time.Date(2026, time.November, 1, 12, 0, 0, 0, time.UTC)

func makeLogs(from, n int) []Log {
	logs := make([]Log, n)
	for i := range logs {
		seq := from + i
		logs[i] = Log{
			VoteID:     fmt.Sprintf("vote-%07d", seq),
			Name:       "Alux Nahual",
			Album:      "Alto al Fuego",
			Year:       1987,
			Rank:       int32(seq%10 + 1),
			Route:      "grpc",
			AcceptedAt: epoch.Add(time.Duration(seq) * time.Millisecond),
			CountedAt:  epoch.Add(time.Duration(seq)*time.Millisecond + time.Second),
			Partition:  seq % 6,
			Offset:     int64(seq),
		}
	}
	return logs
}

// owns says, for each log, whether the stored log is its own.
func owns(logs, stored []Log) []bool {
	own := make([]bool, len(logs))
	for i := range logs {
		own[i] = Own(logs[i], stored[i])
	}
	return own
}

func count(t *testing.T, db *mongo.Database, coll string) int64 {
	t.Helper()
	n, err := db.Collection(coll).CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatalf("count %s: %v", coll, err)
	}
	return n
}

func TestInsertIsIdempotent(t *testing.T) {
	store, db := openStore(t)
	ctx := context.Background()
	logs := makeLogs(0, 15) // with the replay's new ones, no more than logs_recent keeps
	stored, err := store.Insert(ctx, logs)
	if err != nil {
		t.Fatalf("first insert: %v", err)
	}
	own := owns(logs, stored)
	if slices.Contains(own, false) {
		t.Fatalf("first insert: own = %v, want all true", own)
	}
	// A replay of a partly applied batch: ten old logs and five new ones, all the same records,
	// so all still their vote ids' own logs.
	replay := append(slices.Clone(logs[5:]), makeLogs(15, 5)...)
	stored, err = store.Insert(ctx, replay)
	if err != nil {
		t.Fatalf("replayed insert: %v", err)
	}
	own = owns(replay, stored)
	if len(own) != 15 || slices.Contains(own, false) {
		t.Fatalf("replayed insert: own = %v, want 15 times true", own)
	}
	if n := count(t, db, LogsCollection); n != 20 {
		t.Fatalf("%s holds %d logs, want 20", LogsCollection, n)
	}
	store.background.Wait() // logs_recent is written in the background
	if n := count(t, recentDB(db), RecentCollection); n != 20 {
		t.Fatalf("%s holds %d logs, want 20", RecentCollection, n)
	}
}

// The same vote id sent twice is accepted twice, with a later time and maybe by the other route:
// the first log stays, in both collections, even after logs_recent was trimmed of it.
func TestInsertKeepsTheFirstLogOfAVoteID(t *testing.T) {
	store, db := openStore(t)
	ctx := context.Background()
	first := makeLogs(0, 1)[0]
	if _, err := store.Insert(ctx, []Log{first}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	store.background.Wait()
	if _, err := recentDB(db).Collection(RecentCollection).DeleteMany(ctx, bson.D{}); err != nil { // as a trim would
		t.Fatal(err)
	}
	again := first
	again.Route, again.AcceptedAt, again.Offset = "wasm", first.AcceptedAt.Add(time.Hour), 99
	batch := append(makeLogs(1, 2), again, again, first)
	stored, err := store.Insert(ctx, batch)
	if err != nil {
		t.Fatalf("insert again: %v", err)
	}
	own := owns(batch, stored)
	if !SameVote(stored[2], again) || stored[2].Offset != first.Offset {
		t.Fatalf("stored log of the later record = %+v, want the first record's", stored[2])
	}
	// The later record of the vote id is not its own log, whichever route; the first record,
	// replayed, still is.
	if want := []bool{true, true, false, false, true}; !slices.Equal(own, want) {
		t.Fatalf("own = %v, want %v", own, want)
	}
	store.background.Wait()
	for _, coll := range []*mongo.Collection{db.Collection(LogsCollection), recentDB(db).Collection(RecentCollection)} {
		var got Log
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: first.VoteID}}).Decode(&got); err != nil {
			t.Fatalf("%s: %v", coll.Name(), err)
		}
		if got.Route != first.Route || !got.AcceptedAt.Equal(first.AcceptedAt) || got.Offset != first.Offset {
			t.Errorf("%s holds %+v, want the first log %+v", coll.Name(), got, first)
		}
	}
	newest, err := store.Newest(ctx, 20)
	if err != nil || len(newest) != 3 || newest[0].VoteID != "vote-0000002" {
		t.Fatalf("newest = %+v, %v", newest, err)
	}
}

// Concurrent Inserts (partitions) are written together, and each call gets the stored logs of its
// own logs, in its order; a vote id in two calls is stored once, for one of them.
func TestConcurrentInsertsShareWrites(t *testing.T) {
	store, db := openStore(t)
	ctx := context.Background()
	const calls, each = 6, 50
	batches := make([][]Log, calls)
	for i := range batches {
		batches[i] = makeLogs(i*each, each)
	}
	twin := batches[0][0]
	twin.Offset, twin.Partition = 999, 5
	batches[5] = append(batches[5], twin)
	stored := make([][]Log, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stored[i], errs[i] = store.Insert(ctx, batches[i])
		}()
	}
	wg.Wait()
	owners := 0
	for i := range batches {
		if errs[i] != nil {
			t.Fatalf("insert %d: %v", i, errs[i])
		}
		if len(stored[i]) != len(batches[i]) {
			t.Fatalf("insert %d: %d stored logs for %d", i, len(stored[i]), len(batches[i]))
		}
		for j, l := range batches[i] {
			if stored[i][j].VoteID != l.VoteID {
				t.Fatalf("insert %d: stored[%d] is %s, want %s", i, j, stored[i][j].VoteID, l.VoteID)
			}
			if l.VoteID == twin.VoteID {
				if Own(l, stored[i][j]) {
					owners++
				}
			} else if !Own(l, stored[i][j]) {
				t.Errorf("insert %d: %s not its own", i, l.VoteID)
			}
		}
	}
	if owners != 1 {
		t.Errorf("%d records own vote id %s, want exactly 1", owners, twin.VoteID)
	}
	if n := count(t, db, LogsCollection); n != calls*each {
		t.Errorf("%s holds %d logs, want %d", LogsCollection, n, calls*each)
	}
}

func TestNewestAcrossTrims(t *testing.T) {
	store, db := openStore(t)
	ctx := context.Background()
	store.trimEvery = 0 // trim after every insert
	const total = 1000
	// Out of order, as partitions interleave: the newest must still come first.
	for _, from := range []int{500, 0, 750, 250} {
		if _, err := store.Insert(ctx, makeLogs(from, 250)); err != nil {
			t.Fatalf("insert: %v", err)
		}
		store.background.Wait() // logs_recent is written and trimmed in the background
	}
	if n := count(t, db, LogsCollection); n != total {
		t.Fatalf("%s holds %d logs, want %d", LogsCollection, n, total)
	}
	if n := count(t, recentDB(db), RecentCollection); n != RecentKeep {
		t.Fatalf("%s holds %d logs, want it trimmed to %d", RecentCollection, n, RecentKeep)
	}
	got, err := store.Newest(ctx, 20)
	if err != nil {
		t.Fatalf("newest: %v", err)
	}
	if len(got) != 20 {
		t.Fatalf("newest returned %d logs, want 20", len(got))
	}
	for i, l := range got {
		if want := fmt.Sprintf("vote-%07d", total-1-i); l.VoteID != want {
			t.Fatalf("newest[%d] = %s, want %s", i, l.VoteID, want)
		}
	}
	if _, err := store.Newest(ctx, RecentKeep+1); err == nil {
		t.Fatalf("newest(%d) succeeded, want an error", RecentKeep+1)
	}
}

// Two consumers' Stores trim the same logs_recent, each below its own RecentKeep-th newest: the
// newest logs of both stay, whichever wrote them.
func TestTrimsOfTwoStoresKeepTheNewest(t *testing.T) {
	a, db := openStore(t)
	b := New(db)
	ctx := context.Background()
	a.trimEvery, b.trimEvery = 0, 0
	for from := 0; from < 1200; from += 150 {
		// a writes the odd votes of each run, b the even ones; b's stop at 900, so its own bound
		// lags behind a's.
		var odd, even []Log
		for _, l := range makeLogs(from, 150) {
			if l.Offset%2 == 1 {
				odd = append(odd, l)
			} else if from < 900 {
				even = append(even, l)
			}
		}
		if _, err := a.Insert(ctx, odd); err != nil {
			t.Fatal(err)
		}
		if len(even) > 0 {
			if _, err := b.Insert(ctx, even); err != nil {
				t.Fatal(err)
			}
		}
		a.background.Wait()
		b.background.Wait()
	}
	got, err := a.Newest(ctx, RecentKeep)
	if err != nil {
		t.Fatal(err)
	}
	// The newest RecentKeep written are a's odd votes from 1199 down; none of b's (all before 900).
	last := fmt.Sprintf("vote-%07d", 1199-2*(RecentKeep-1))
	if len(got) != RecentKeep || got[0].VoteID != "vote-0001199" || got[RecentKeep-1].VoteID != last {
		t.Fatalf("newest = %d logs from %s to %s, want vote-0001199 down to %s", len(got), got[0].VoteID, got[len(got)-1].VoteID, last)
	}
}

// Logs of one accept time (a backlog written at once) are trimmed too, by vote id.
func TestTrimWithOneAcceptTime(t *testing.T) {
	store, db := openStore(t)
	ctx := context.Background()
	store.trimEvery = 0
	for from := 0; from < 750; from += 150 {
		logs := makeLogs(from, 150)
		for i := range logs {
			logs[i].AcceptedAt = epoch
		}
		if _, err := store.Insert(ctx, logs); err != nil {
			t.Fatalf("insert: %v", err)
		}
		store.background.Wait()
	}
	if n := count(t, recentDB(db), RecentCollection); n != RecentKeep {
		t.Fatalf("%s holds %d logs after the last trim, want %d", RecentCollection, n, RecentKeep)
	}
	got, err := store.Newest(ctx, 1)
	if err != nil || len(got) != 1 || got[0].VoteID != "vote-0000749" {
		t.Fatalf("newest = %+v, %v; want vote-0000749", got, err)
	}
}

// Recount counts only the logs at or below each partition's watermark: those are the votes the
// counts hold; the ones above are not applied yet, and partitions without a watermark have none.
func TestRecountStopsAtTheWatermarks(t *testing.T) {
	store, _ := openStore(t)
	ctx := context.Background()
	logs := makeLogs(0, 60) // partitions 0..5, offsets 0..59, album "Alto al Fuego"
	other := makeLogs(60, 6)
	for i := range other {
		other[i].Album = "Conquista"
	}
	if _, err := store.Insert(ctx, append(logs, other...)); err != nil {
		t.Fatal(err)
	}
	got, err := store.Recount(ctx, map[int]int64{0: 30, 1: 61, 2: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0: offsets 0, 6, ..., 30 (6 logs); partition 1: 1, 7, ..., 55 and 61 (10 and 1).
	want := map[BandAlbum]int64{{"Alux Nahual", "Alto al Fuego"}: 6 + 10, {"Alux Nahual", "Conquista"}: 1}
	if len(got) != len(want) || got[BandAlbum{"Alux Nahual", "Alto al Fuego"}] != 16 || got[BandAlbum{"Alux Nahual", "Conquista"}] != 1 {
		t.Fatalf("recount = %v, want %v", got, want)
	}
	if none, err := store.Recount(ctx, map[int]int64{}); err != nil || len(none) != 0 {
		t.Fatalf("recount without watermarks = %v, %v", none, err)
	}
}

// BenchmarkNewest20At100k measures the API's main read with 100k logs stored:
// tools/bazel run //go/internal/votelog:newest_benchmark (figures in docs/performance.md).
func BenchmarkNewest20At100k(b *testing.B) {
	store, db := openStore(b)
	ctx := context.Background()
	const total, batch = 100_000, 1000
	start := time.Now()
	for from := 0; from < total; from += batch {
		if _, err := store.Insert(ctx, makeLogs(from, batch)); err != nil {
			b.Fatalf("insert: %v", err)
		}
	}
	n, err := db.Collection(LogsCollection).EstimatedDocumentCount(ctx)
	if err != nil || n != total {
		b.Fatalf("%s holds %d logs (%v), want %d", LogsCollection, n, err, total)
	}
	b.Logf("stored %d logs in %v (%.0f logs/s)", total, time.Since(start), total/time.Since(start).Seconds())
	b.ResetTimer()
	for b.Loop() {
		logs, err := store.Newest(ctx, 20)
		if err != nil || len(logs) != 20 || logs[0].VoteID != fmt.Sprintf("vote-%07d", total-1) {
			b.Fatalf("newest: %d logs, err %v", len(logs), err)
		}
	}
}

// The names the consumer writes to are the ones the API reads, and it keeps as many newest logs as
// the API's limit allows (proto/mongo_names.json).
func TestNamesFollowTheContract(t *testing.T) {
	path := runfile.Repo(t, "proto/mongo_names.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the names: %v", err)
	}
	type place struct{ Database, Collection string }
	type contract struct {
		Logs, Recent place
		NewestMax    int `json:"newest_max"`
	}
	var names contract
	if err := json.Unmarshal(data, &names); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	got := contract{
		place{Database, LogsCollection},
		place{RecentDatabaseOf(Database), RecentCollection},
		RecentKeep,
	}
	if got != names {
		t.Errorf("votelog writes to %+v, proto/mongo_names.json says %+v", got, names)
	}
}
