package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	cfg, err := configFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8080" || cfg.ProducerTarget != "127.0.0.1:50051" || cfg.ProducerTimeout != 6*time.Second ||
		cfg.ShutdownTimeout != 8*time.Second || cfg.LogLevel != slog.LevelInfo || cfg.Pprof {
		t.Fatalf("defaults: %+v", cfg)
	}
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "PRODUCER_GRPC_TARGET": "dns:///producer:50051", "PRODUCER_TIMEOUT": "2s", "LOG_LEVEL": "debug", "DEBUG_PPROF": "true"}
	cfg, err = configFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.HTTPAddr != "127.0.0.1:0" || cfg.ProducerTarget != "dns:///producer:50051" || cfg.ProducerTimeout != 2*time.Second || cfg.LogLevel != slog.LevelDebug || !cfg.Pprof {
		t.Fatalf("set: %+v, %v", cfg, err)
	}
	_, err = configFromEnv(func(k string) string {
		return map[string]string{"PRODUCER_TIMEOUT": "soon", "SHUTDOWN_TIMEOUT": "0s"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "PRODUCER_TIMEOUT") || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Fatalf("bad values: %v", err)
	}
}
