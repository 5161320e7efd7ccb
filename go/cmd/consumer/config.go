package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tally-voting/tally/go/internal/consume"
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
	var errs []error
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	required := func(name string) string {
		v := str(name, "")
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
		return v
	}
	duration := func(name string, def time.Duration) time.Duration {
		v := str(name, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 50ms or 5s", name, v))
		}
		return d
	}
	cfg := Config{
		RedisURL:       required("REDIS_URL"),
		MongoURL:       required("MONGO_URL"),
		HTTPAddr:       str("HTTP_ADDR", ":9102"),
		SessionTimeout: duration("KAFKA_SESSION_TIMEOUT", 10*time.Second),
		Loop: consume.Config{
			BatchWait:    duration("BATCH_WAIT", consume.DefaultBatchWait),
			RetryMax:     duration("RETRY_MAX", consume.DefaultRetryMax),
			DrainTimeout: duration("DRAIN_TIMEOUT", consume.DefaultDrainTimeout),
		},
	}
	for _, b := range strings.Split(required("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.KafkaBrokers = append(cfg.KafkaBrokers, b)
		}
	}
	for _, u := range []struct{ name, val, scheme string }{
		{"REDIS_URL", cfg.RedisURL, "redis"}, {"MONGO_URL", cfg.MongoURL, "mongodb"},
	} {
		if parsed, err := url.Parse(u.val); u.val != "" && (err != nil || !strings.HasPrefix(parsed.Scheme, u.scheme)) {
			errs = append(errs, fmt.Errorf("%s=%q: want a %s:// URL", u.name, u.val, u.scheme))
		}
	}
	cfg.Loop.BatchSize = consume.DefaultBatchSize
	if v := str("BATCH_SIZE", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10_000 {
			errs = append(errs, fmt.Errorf("BATCH_SIZE=%q: want an integer from 1 to 10000", v))
		}
		cfg.Loop.BatchSize = n
	}
	if v := str("LOG_LEVEL", ""); v != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	switch v := strings.ToLower(str(httpapi.PprofEnv, "false")); v {
	case "1", "true", "yes", "on":
		cfg.Pprof = true
	case "0", "false", "no", "off":
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want true or false", httpapi.PprofEnv, v))
	}
	if cfg.SessionTimeout < 6*time.Second {
		errs = append(errs, fmt.Errorf("KAFKA_SESSION_TIMEOUT=%v: Kafka's brokers accept 6s at least", cfg.SessionTimeout))
	}
	return cfg, errors.Join(errs...)
}
