package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/readiness"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := configFromEnv(env(map[string]string{
		"KAFKA_BROKERS": "k1:9092, k2:9092", "REDIS_URL": "redis://r:6379", "MONGO_URL": "mongodb://m:27017/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.KafkaBrokers, []string{"k1:9092", "k2:9092"}) || cfg.HTTPAddr != ":9102" ||
		cfg.Loop.BatchSize != consume.DefaultBatchSize || cfg.Loop.BatchWait != consume.DefaultBatchWait ||
		cfg.SessionTimeout != 10*time.Second || cfg.Pprof {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestConfigNamesEveryBadVariable(t *testing.T) {
	_, err := configFromEnv(env(map[string]string{
		"REDIS_URL": "localhost:6379", "BATCH_SIZE": "0", "BATCH_WAIT": "soon", "LOG_LEVEL": "loud",
		"KAFKA_SESSION_TIMEOUT": "1s", "DEBUG_PPROF": "sometimes",
	}))
	for _, name := range []string{"KAFKA_BROKERS", "MONGO_URL", "REDIS_URL", "BATCH_SIZE", "BATCH_WAIT", "LOG_LEVEL", "KAFKA_SESSION_TIMEOUT", "DEBUG_PPROF"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	consume.NewMetrics(reg)
	health := readiness.New("redis")
	h := handler(health, reg)
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable ||
		body != `{"error":"not ready: redis","checks":["redis"]}`+"\n" {
		t.Errorf("/readyz before the first check = %d %q, want 503 and a JSON error naming the check", code, body)
	}
	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "{\"status\":\"ok\"}\n" {
		t.Errorf("/healthz = %d %q, want 200 and JSON", code, body)
	}
	health.Set("redis", nil)
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || body != "{\"status\":\"ready\"}\n" {
		t.Errorf("/readyz when healthy = %d %q", code, body)
	}
	health.Set("redis writes", errors.New("dial tcp 10.0.0.7:6379: connection refused"))
	health.Set("votes partition 3", errors.New("topic votes is not the one Redis's counts were made from"))
	// The checks' names, not their reasons (hosts, drivers' messages: those are in the logs).
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable ||
		body != `{"error":"not ready: redis writes, votes partition 3","checks":["redis writes","votes partition 3"]}`+"\n" {
		t.Errorf("/readyz with failing writes = %d %q, want 503 naming both checks", code, body)
	}
	_, body := get(t, h, "/metrics")
	for _, name := range []string{
		"tally_consumer_processed_total", "tally_consumer_dead_lettered_total", "tally_consumer_apply_seconds",
		"tally_consumer_write_errors_total", "tally_consumer_rewinds_total", "tally_consumer_retention_lost_records_total",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
