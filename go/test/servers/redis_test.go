package servers_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisHashIncrement(t *testing.T) {
	opts, err := redis.ParseURL(mustEnv(t, "REDIS_URL"))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	pipe := client.Pipeline()
	for range 5 {
		pipe.HIncrBy(ctx, "harness:band", "Alux Nahual", 1)
	}
	pipe.HIncrBy(ctx, "harness:band", "Bohemia Suburbana", 2)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("HINCRBY: %v", err)
	}
	got, err := client.HGetAll(ctx, "harness:band").Result()
	if err != nil {
		t.Fatalf("HGETALL: %v", err)
	}
	if got["Alux Nahual"] != "5" || got["Bohemia Suburbana"] != "2" || len(got) != 2 {
		t.Fatalf("HGETALL = %v, want Alux Nahual=5 Bohemia Suburbana=2", got)
	}
}
