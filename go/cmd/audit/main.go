// Command audit recounts the votes from MongoDB's logs and compares them with the counts in
// Redis (total, per band, per album, each band's albums), logging every difference and exiting 1
// if there is any. With -repair it then rewrites those counts from the logs, unless a consumer
// applied votes meanwhile. README.md says how, and when repairing is safe.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/audit"
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
	_, err = audit.Run(ctx, counts.New(rdb), votelog.New(mc.Database(votelog.Database)), cfg.Repair, log)
	return err
}
