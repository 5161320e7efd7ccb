package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	cfg, err := configFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != ":50051" || cfg.HTTPAddr != ":9101" || !slices.Equal(cfg.KafkaBrokers, []string{"127.0.0.1:9092"}) ||
		cfg.KafkaBatchTimeout != 5*time.Millisecond || cfg.KafkaWriteTimeout != 5*time.Second ||
		cfg.KafkaCheckEvery != time.Second || cfg.ShutdownTimeout != 8*time.Second || cfg.Pprof {
		t.Fatalf("defaults: %+v", cfg)
	}
	env := map[string]string{"KAFKA_BROKERS": "k1:9092, k2:9092", "KAFKA_BATCH_TIMEOUT": "2ms", "DEBUG_PPROF": "1"}
	cfg, err = configFromEnv(func(k string) string { return env[k] })
	if err != nil || !slices.Equal(cfg.KafkaBrokers, []string{"k1:9092", "k2:9092"}) || cfg.KafkaBatchTimeout != 2*time.Millisecond || !cfg.Pprof {
		t.Fatalf("set: %+v, %v", cfg, err)
	}
	_, err = configFromEnv(func(k string) string {
		return map[string]string{"KAFKA_WRITE_TIMEOUT": "-1s", "LOG_LEVEL": "chatty"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "KAFKA_WRITE_TIMEOUT") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("bad values: %v", err)
	}
}
