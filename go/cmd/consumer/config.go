package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/envconf"
	"github.com/tally-voting/tally/go/internal/httpapi"
)

// Config is the consumer's configuration, read from the environment (README.md lists it).
type Config struct {
	KafkaBrokers []string
	RedisURL     string
	MongoURL     string
	HTTPAddr     string
	// SessionTimeout is how long the group waits for a silent member before moving its partitions.
	SessionTimeout time.Duration
	Loop           consume.Config
	LogLevel       slog.Level
	// Pprof serves net/http/pprof under /debug/pprof/ on HTTP_ADDR (off by default).
	Pprof bool
}

// configFromEnv reads Config through getenv, reporting every bad variable at once.
func configFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.Reader{Get: getenv}
	cfg := Config{
		KafkaBrokers:   r.List("KAFKA_BROKERS", nil),
		RedisURL:       r.String("REDIS_URL", ""),
		MongoURL:       r.String("MONGO_URL", ""),
		HTTPAddr:       r.String("HTTP_ADDR", ":9102"),
		SessionTimeout: r.Duration("KAFKA_SESSION_TIMEOUT", 10*time.Second),
		Loop: consume.Config{
			BatchSize:      r.Int("BATCH_SIZE", consume.DefaultBatchSize, 1, 10_000),
			BatchWait:      r.Duration("BATCH_WAIT", consume.DefaultBatchWait),
			RetryMax:       r.Duration("RETRY_MAX", consume.DefaultRetryMax),
			DrainTimeout:   r.Duration("DRAIN_TIMEOUT", consume.DefaultDrainTimeout),
			WatermarkCheck: r.Duration("WATERMARK_CHECK", consume.DefaultWatermarkCheck),
		},
		LogLevel: r.LogLevel("LOG_LEVEL", slog.LevelInfo),
		Pprof:    r.Bool(httpapi.PprofEnv, false),
	}
	var errs []error
	if len(cfg.KafkaBrokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is required"))
	}
	for _, u := range []struct{ name, val, scheme string }{
		{"REDIS_URL", cfg.RedisURL, "redis"}, {"MONGO_URL", cfg.MongoURL, "mongodb"},
	} {
		if parsed, err := url.Parse(u.val); u.val == "" || err != nil || !strings.HasPrefix(parsed.Scheme, u.scheme) {
			errs = append(errs, fmt.Errorf("%s=%q: want a %s:// URL", u.name, u.val, u.scheme))
		}
	}
	if cfg.SessionTimeout < 6*time.Second {
		errs = append(errs, fmt.Errorf("KAFKA_SESSION_TIMEOUT=%v: Kafka's brokers accept 6s at least", cfg.SessionTimeout))
	}
	return cfg, errors.Join(append(errs, r.Err())...)
}
