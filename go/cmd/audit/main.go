// Command audit recounts the votes from MongoDB's logs and compares them with the counts in
// Redis (total, per band, per album, each band's albums), logging every difference and exiting 1
// if there is any. With -repair it then rewrites those counts from the logs, unless a consumer
// applied votes meanwhile. README.md says how, and when repairing is safe.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/envconf"
	"github.com/tally-voting/tally/go/internal/service"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// Config is the audit's configuration: the environment, and -repair.
type Config struct {
	RedisURL string
	MongoURL string
	// Timeout bounds the whole audit.
	Timeout  time.Duration
	LogLevel slog.Level
	Repair   bool
}

func configFromEnv(repair bool) func(getenv func(string) string) (Config, error) {
	return func(getenv func(string) string) (Config, error) {
		r := envconf.Reader{Get: getenv}
		cfg := Config{
			RedisURL: r.String("REDIS_URL", "redis://127.0.0.1:6379"),
			MongoURL: r.String("MONGO_URL", "mongodb://127.0.0.1:27017/"),
			Timeout:  r.Duration("AUDIT_TIMEOUT", 10*time.Minute),
			LogLevel: r.LogLevel("LOG_LEVEL", slog.LevelInfo),
			Repair:   repair,
		}
		return cfg, r.Err()
	}
}

func main() {
	repair := flag.Bool("repair", false, "rewrite Redis's counts from MongoDB's logs when they differ")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: audit [-repair]\n\n"+
			"Recounts the votes from MongoDB's logs (MONGO_URL) and compares them with Redis's counts (REDIS_URL);\n"+
			"exits 1 on any difference. See go/cmd/audit/README.md.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	service.Main("audit", configFromEnv(*repair), func(c Config) slog.Level { return c.LogLevel }, run)
}

// errDiffer is run's error when the counts differ from the logs (and were not repaired).
var errDiffer = errors.New("Redis's counts differ from MongoDB's logs")

func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURL).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return fmt.Errorf("MONGO_URL: %w", err)
	}
	defer mc.Disconnect(context.WithoutCancel(ctx))
	return audit(ctx, counts.New(rdb), votelog.New(mc.Database(votelog.Database)), cfg.Repair, log)
}

// audit compares once, and with repair rewrites the counts if they differ.
func audit(ctx context.Context, store *counts.Store, logs *votelog.Store, repair bool, log *slog.Logger) error {
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return err
	}
	recount, err := logs.Recount(ctx, snap.Applied)
	if err != nil {
		return err
	}
	var want counts.Counts
	for ba, n := range recount {
		want.Add(ba.Band, ba.Album, n)
	}
	diffs := compare(snap.Counts, want)
	for _, d := range diffs {
		log.Warn("difference", "count", d.count, "key", d.key, "field", d.field, "redis", d.redis, "logs", d.logs)
	}
	log.Info("audited", "watermarks", snap.Applied, "votes_in_logs", want.Total, "votes_in_redis", snap.Total,
		"differences", len(diffs))
	if len(diffs) == 0 {
		return nil
	}
	if !repair {
		return fmt.Errorf("%w: %d differences (rerun with -repair to rewrite the counts from the logs)", errDiffer, len(diffs))
	}
	if err := store.Replace(ctx, snap, want); err != nil {
		if errors.Is(err, counts.ErrMoved) {
			return fmt.Errorf("not repaired: %w; stop the consumers (or wait until no votes arrive) and rerun", err)
		}
		return err
	}
	log.Info("repaired: Redis's counts rewritten from the logs", "votes", want.Total)
	return nil
}

// difference is one count that is not what the logs say.
type difference struct {
	count, key, field string
	redis, logs       int64
}

// compare lists every count of got that differs from want.
func compare(got, want counts.Counts) []difference {
	var diffs []difference
	if got.Total != want.Total {
		diffs = append(diffs, difference{"total", counts.TotalKey, "", got.Total, want.Total})
	}
	hash := func(count, key string, g, w map[string]int64) {
		for _, f := range slices.Sorted(maps.Keys(union(g, w))) {
			if g[f] != w[f] {
				diffs = append(diffs, difference{count, key, f, g[f], w[f]})
			}
		}
	}
	hash("by_band", counts.BandKey, got.ByBand, want.ByBand)
	hash("by_album", counts.AlbumKey, got.ByAlbum, want.ByAlbum)
	for _, b := range counts.Bands(got, want) {
		hash("band_albums", counts.BandAlbumsKey(b), got.BandAlbums[b], want.BandAlbums[b])
	}
	return diffs
}

func union(a, b map[string]int64) map[string]bool {
	u := make(map[string]bool, len(a)+len(b))
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}
