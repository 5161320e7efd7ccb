// Command simulate runs a series of the counting protocol's simulated schedules (go/internal/sim)
// against the Redis in REDIS_URL, printing progress and a summary: schedules, violations, rate.
// It exits 1 if a seed broke an invariant (each is named, with the command that replays it).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/tally-voting/tally/go/internal/sim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(2)
	}
}

func run() error {
	var plan sim.Plan
	flag.Uint64Var(&plan.First, "seed", 1, "the first seed")
	flag.IntVar(&plan.Count, "schedules", 100000, "how many schedules (seeds seed, seed+1...)")
	flag.IntVar(&plan.Workers, "workers", 2*runtime.GOMAXPROCS(0), "schedules run at a time, each on a Redis database of its own")
	flag.IntVar(&plan.FirstDB, "db", 1, "the first worker's Redis database; the others take the next ones")
	flag.IntVar(&plan.MaxFailures, "max-failures", 5, "stop after this many failing seeds (0: never)")
	flag.IntVar(&plan.ProgressEvery, "progress", 10000, "print progress every this many schedules")
	flag.Parse()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		return fmt.Errorf("REDIS_URL is not set (tools/bazel run //go/internal/sim:simulate starts a Redis and sets it)")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	// Ctrl-C ends the series after the schedules running then, with its summary.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	plan.Progress = func(s sim.Summary) { fmt.Println(s) }
	fmt.Printf("simulate: %d schedules from seed %d, %d at a time, Redis databases %d to %d\n",
		plan.Count, plan.First, plan.Workers, plan.FirstDB, plan.FirstDB+plan.Workers-1)
	sum, err := sim.RunMany(ctx, plan, sim.DefaultConfig(), opts)
	fmt.Println("done:", sum)
	if err != nil {
		return err
	}
	for _, f := range sum.Failed {
		fmt.Print(f)
		fmt.Printf("  replay: tools/bazel test //go/internal/sim:sim_stack_test --test_env=SIM_SEED=%d --test_env=SIM_SCHEDULES=1\n", f.Seed)
	}
	if len(sum.Failed) > 0 {
		os.Exit(1)
	}
	return nil
}
