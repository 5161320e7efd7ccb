// Package testenv reads the settings that a test's BUILD rule or its stack harness passes in the
// environment: numbers that a developer may raise on demand, and the Redis the harness started.
package testenv

import (
	"os"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Int returns the non-negative integer in the environment variable name, or def when it is unset.
func Int(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// RedisOptions returns the options of the Redis in REDIS_URL, which the stack harness sets for
// the tests it runs (a *_stack_test target).
func RedisOptions(t testing.TB) *redis.Options {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Fatal("REDIS_URL is not set: run this test through its stack_test target")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	return opts
}
