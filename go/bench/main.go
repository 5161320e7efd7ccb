// Command bench measures Tally's producers and consumer on this machine and writes the figures
// as results.json and results.md (docs/performance.md explains them):
//
//   - producers: each route (name → base URL of the HTTP API of docs/api.md; today "grpc", later
//     "wasm" beside it) under identical loads — open loops at fixed offered rates, latency counted
//     from each vote's scheduled time, and closed loops of N connections (saturation) — next to
//     two baselines measured in the same run: a bare gRPC echo server, and a grpc-front in front
//     of it (the HTTP and gRPC hops without Kafka);
//   - consumer: the time to count a backlog written straight to Kafka, checked exact, next to
//     redis-benchmark's pipelined HINCRBY, the consumer's Redis and MongoDB steps alone, and the
//     MongoDB-wire server's bulk insert rate;
//   - for every run, the CPU each process used and what the rest of the machine used, the
//     processes' peak RSS, and CPU profiles of the services (DEBUG_PPROF).
//
// It runs under `stack exec` (tools/bazel run //go/bench:producers_consumer), which starts Kafka,
// Redis, the MongoDB-wire server and the producers and passes their addresses in the environment;
// the consumer, the echo server and its front are started by the benchmark itself.
//
//	bench [flags]         the benchmark (-h lists the flags)
//	bench grpc-echo       the bare gRPC echo server (the benchmark starts it)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	routes        []route
	rates         []float64
	conns         []int
	duration      time.Duration
	warmup        time.Duration
	workers       int
	backlog       int
	growthEvery   int
	drainTimeout  time.Duration
	luaVotes      int
	mongoDocs     int
	redisRequests int
	consumerBin   string
	frontBin      string
	wasmedge      string
	wasmModule    string
	wasmAOT       string
	wasmStarts    int
	wasmConns     int
	consumerEnv   []string
	// The pipeline part: accept to counted under steady load on every route at once.
	pipelineRates       []float64
	pipelineConsumers   int
	pipelineDuration    time.Duration
	pipelineWarmup      time.Duration
	pipelineProfileRate float64
	pipelinePoll        time.Duration
	// The failover part: one Kafka leader lost under steady load on every route.
	failoverRate   float64
	failoverWarmup time.Duration
	failoverSignal string
	failoverNodes  int
	failoverWait   time.Duration
	failoverAfter  time.Duration
	profileSeconds int
	baselines      bool
	quietLimit     float64
	quietWait      time.Duration
	only           string
	out            string
	save           bool
	self           string
	kafka          []string
	redisURL       string
	mongoURL       string
	notes          []string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseConfig(args []string, getenv func(string) string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := &config{}
	defRoutes := getenv("BENCH_ROUTES")
	if defRoutes == "" {
		defRoutes = "grpc=${GRPC_FRONT_URL},wasm=${WASM_PRODUCER_URL}"
	}
	routes := fs.String("routes", defRoutes, "producer routes to load, name=URL,...; ${VAR} is read from the environment and a route whose URL is empty is skipped (default: $BENCH_ROUTES)")
	rates := fs.String("rates", "1000,5000", "open-loop offered rates, votes/s")
	conns := fs.String("conns", "64,256", "closed-loop (saturation) connection counts")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each load run")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unrecorded closed-loop warm-up per target (32 connections)")
	fs.IntVar(&cfg.workers, "workers", 256, "open loop: connections (and requests in flight) at most")
	fs.IntVar(&cfg.backlog, "backlog", 200_000, "consumer: votes written to Kafka before it starts")
	fs.IntVar(&cfg.growthEvery, "growth-every", 1_000_000, "consumer: measure Redis's memory and MongoDB's size every this many votes counted (and at the end)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 15*time.Minute, "consumer: longest wait for the backlog to be counted")
	fs.IntVar(&cfg.luaVotes, "lua-votes", 120_000, "baseline: votes applied through counts.Apply alone")
	fs.IntVar(&cfg.mongoDocs, "mongo-docs", 30_000, "baseline: documents per MongoDB insert run")
	fs.IntVar(&cfg.redisRequests, "redis-requests", 2_000_000, "baseline: redis-benchmark HINCRBY requests")
	fs.StringVar(&cfg.consumerBin, "consumer", "", "the consumer program (required for the consumer part)")
	fs.StringVar(&cfg.frontBin, "grpc-front", "", "the grpc-front program, put in front of the echo server (required for the producer part)")
	fs.StringVar(&cfg.wasmedge, "wasmedge", "wasmedge", "the WasmEdge runtime, for the Wasm producer's run modes")
	fs.StringVar(&cfg.wasmModule, "wasm-module", "", "the Wasm producer's plain module (required for the wasm-modes part)")
	fs.StringVar(&cfg.wasmAOT, "wasm-aot", "", "the same module compiled ahead of time (required for the wasm-modes part)")
	fs.IntVar(&cfg.wasmStarts, "wasm-starts", 5, "wasm modes: starts timed per mode")
	fs.IntVar(&cfg.wasmConns, "wasm-conns", 64, "wasm modes: closed-loop connections of the load on each mode")
	pipelineRates := fs.String("pipeline-rates", "500,1000,5000,10000", "pipeline: offered rates, votes/s over all routes together")
	fs.IntVar(&cfg.pipelineConsumers, "pipeline-consumers", 2, "pipeline: consumer replicas")
	fs.DurationVar(&cfg.pipelineDuration, "pipeline-duration", 20*time.Second, "pipeline: length of each rate's load")
	fs.DurationVar(&cfg.pipelineWarmup, "pipeline-warmup", 60*time.Second, "pipeline: unmeasured load at the first rate before the steps (Kafka's JIT warms up)")
	fs.Float64Var(&cfg.pipelineProfileRate, "pipeline-profile-rate", 1000, "pipeline: the rate during which the consumers and the MongoDB-wire server are profiled")
	fs.DurationVar(&cfg.pipelinePoll, "pipeline-poll", 5*time.Millisecond, "pipeline: how often Redis's applied watermarks are read")
	fs.Float64Var(&cfg.failoverRate, "failover-rate", 100, "failover: votes/s offered to each route")
	fs.DurationVar(&cfg.failoverWarmup, "failover-warmup", 15*time.Second, "failover: load before the signal (its last 5 s are the baseline)")
	fs.StringVar(&cfg.failoverSignal, "failover-signal", "KILL", "failover: how the leader ends, KILL (a crash) or TERM (a controlled shutdown)")
	fs.IntVar(&cfg.failoverNodes, "failover-nodes", 1, "failover: brokers signalled at once, 1 (the leader of partition 0) or 2 (it and another: min.insync.replicas cannot be met)")
	fs.DurationVar(&cfg.failoverWait, "failover-wait", time.Minute, "failover: longest wait for every route to accept the lost leader's partitions again")
	fs.DurationVar(&cfg.failoverAfter, "failover-after", 10*time.Second, "failover: load kept on after every route recovered")
	fs.Var((*listFlag)(&cfg.consumerEnv), "consumer-env", "NAME=VALUE for the consumer, e.g. BATCH_SIZE=1000 (repeatable)")
	fs.IntVar(&cfg.profileSeconds, "profile-seconds", 8, "length of each CPU profile; 0 takes none")
	fs.BoolVar(&cfg.baselines, "baselines", true, "measure the baselines too (the echo server and its front; redis-benchmark, MongoDB inserts)")
	fs.Float64Var(&cfg.quietLimit, "quiet-below", 0.25, "before each run, wait for a second in which other processes use fewer cores than this")
	fs.DurationVar(&cfg.quietWait, "quiet-wait", 90*time.Second, "longest wait for such a second (then run anyway, and say so)")
	fs.StringVar(&cfg.only, "only", "", `run only one part: "producers", "consumer", "pipeline", "wasm-modes" or "failover" (only under //go/bench:failover, never part of a full run)`)
	fs.StringVar(&cfg.out, "out", "", "directory for the results (default: a new temp dir, printed at the end)")
	fs.BoolVar(&cfg.save, "save", false, "write the results under $BUILD_WORKSPACE_DIRECTORY/docs/results/<date>-producers-consumer/run-<n> (<date>-wasm-modes with -only wasm-modes)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if cfg.routes, cfg.notes, err = parseRoutes(*routes, getenv); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", s)
		}
		cfg.rates = append(cfg.rates, v)
	}
	for _, s := range strings.Split(*pipelineRates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-pipeline-rates: %q is not a positive number", s)
		}
		cfg.pipelineRates = append(cfg.pipelineRates, v)
	}
	if cfg.pipelineConsumers < 1 {
		return nil, fmt.Errorf("-pipeline-consumers: want at least 1")
	}
	for _, s := range strings.Split(*conns, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-conns: %q is not a positive integer", s)
		}
		cfg.conns = append(cfg.conns, v)
	}
	switch cfg.only {
	case "", "producers", "consumer", "pipeline", "wasm-modes", "failover":
	default:
		return nil, fmt.Errorf(`-only: want "producers", "consumer", "pipeline", "wasm-modes" or "failover", not %q`, cfg.only)
	}
	if cfg.failoverSignal != "KILL" && cfg.failoverSignal != "TERM" {
		return nil, fmt.Errorf("-failover-signal: want KILL or TERM, not %q", cfg.failoverSignal)
	}
	if cfg.failoverNodes != 1 && cfg.failoverNodes != 2 {
		return nil, fmt.Errorf("-failover-nodes: want 1 or 2, not %d", cfg.failoverNodes)
	}
	for _, b := range strings.Split(getenv("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.kafka = append(cfg.kafka, b)
		}
	}
	cfg.redisURL, cfg.mongoURL = getenv("REDIS_URL"), getenv("MONGO_URL")
	if cfg.runs("consumer") || cfg.runs("pipeline") {
		if cfg.consumerBin == "" || len(cfg.kafka) == 0 || cfg.redisURL == "" || cfg.mongoURL == "" {
			return nil, fmt.Errorf("the consumer and pipeline parts need -consumer and KAFKA_BROKERS, REDIS_URL, MONGO_URL (run it under stack exec)")
		}
	}
	if cfg.runs("producers") && cfg.frontBin == "" {
		return nil, fmt.Errorf("the producer part needs -grpc-front")
	}
	if cfg.runs("wasm-modes") && (cfg.wasmModule == "" || cfg.wasmAOT == "" || len(cfg.kafka) == 0) {
		return nil, fmt.Errorf("the wasm-modes part needs -wasm-module, -wasm-aot and KAFKA_BROKERS (run it under stack exec)")
	}
	for _, p := range []*string{&cfg.consumerBin, &cfg.frontBin, &cfg.wasmModule, &cfg.wasmAOT} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	if cfg.self, err = os.Executable(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// runs says whether the run includes part: every part, unless -only names one. The failover part
// runs only when named: it ends a Kafka broker, which the rest of a run needs.
func (c *config) runs(part string) bool {
	return c.only == part || (c.only == "" && part != "failover")
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "grpc-echo" {
		if err := runEcho(); err != nil {
			fmt.Fprintf(os.Stderr, "grpc-echo: %v\n", err)
			os.Exit(1)
		}
		return
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench ")
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Printf("FAILED: %v", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config) error {
	started := time.Now()
	out, err := outDir(cfg, started)
	if err != nil {
		return err
	}
	log.Printf("results go to %s", out)
	rep := &report{Started: started.UTC().Format(time.RFC3339), Machine: describeMachine(), Settings: settingsOf(cfg), Notes: cfg.notes}
	var own []proc
	rep.IdleBefore = idleOutside(3 * time.Second)
	log.Printf("before the run the machine is busy %.2f cores (other processes)", rep.IdleBefore.Machine)
	if cfg.runs("consumer") {
		if rep.Consumer, err = runConsumer(ctx, cfg, out, &own); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
	}
	if cfg.runs("producers") {
		var notes []string
		if rep.Producers, notes, err = runProducers(ctx, cfg, out, &own); err != nil {
			return fmt.Errorf("producers: %w", err)
		}
		rep.Notes = append(rep.Notes, notes...)
	}
	if cfg.runs("pipeline") {
		if rep.Pipeline, err = runPipeline(ctx, cfg, out, &own); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	}
	if cfg.runs("wasm-modes") {
		if rep.WasmModes, err = runWasmModes(ctx, cfg, out, &own); err != nil {
			return fmt.Errorf("wasm modes: %w", err)
		}
	}
	if cfg.runs("failover") {
		if rep.Failover, err = runFailover(ctx, cfg, out); err != nil {
			return fmt.Errorf("failover: %w", err)
		}
	}
	rep.OutsideDuringRuns = outside.mean()
	for _, p := range stackProcesses(nil) {
		if m, err := readMemory(p.PID); err == nil {
			rep.Processes = append(rep.Processes, procMemory{p, m})
		}
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	rep.Seconds = round1(time.Since(started).Seconds())
	log.Printf("summarizing profiles (go tool pprof)")
	if rep.Consumer != nil {
		summarize(rep.Consumer.Profiles, out)
	}
	if rep.Pipeline != nil {
		summarize(rep.Pipeline.Profiles, out)
	}
	if rep.Producers != nil {
		for _, t := range rep.Producers.Targets {
			summarize(t.Profiles, out)
		}
	}
	if err := writeReport(rep, out); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(summaryText(rep))
	fmt.Printf("\nresults: %s/results.md and results.json\n", out)
	return nil
}

func outDir(cfg *config, now time.Time) (string, error) {
	switch {
	case cfg.out != "":
		return cfg.out, os.MkdirAll(cfg.out, 0o755)
	case cfg.save:
		ws := os.Getenv("BUILD_WORKSPACE_DIRECTORY")
		if ws == "" {
			return "", fmt.Errorf("-save needs BUILD_WORKSPACE_DIRECTORY (run through tools/bazel run), or give -out")
		}
		// Repeated runs of a day go side by side: run-1, run-2...
		what := "producers-consumer"
		switch cfg.only {
		case "wasm-modes":
			what = "wasm-modes"
		case "pipeline":
			what = "accept-to-counted"
		case "failover":
			what = "failover"
		}
		base := filepath.Join(ws, "docs", "results", now.Format("2006-01-02")+"-"+what)
		for n := 1; ; n++ {
			dir := filepath.Join(base, fmt.Sprintf("run-%d", n))
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				return dir, os.MkdirAll(dir, 0o755)
			}
		}
	}
	return os.MkdirTemp("", "tally-bench-")
}
