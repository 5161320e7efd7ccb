// Command stack runs Tally's local servers: Kafka, Redis and the MongoDB-wire server.
//
//	stack up   [flags]                start them on the usual ports and keep them until Ctrl-C
//	stack exec [flags] -- CMD [ARG...] start them on free ports in a temp dir, run CMD with
//	                                   KAFKA_BROKERS, REDIS_URL, MONGO_URL and the services'
//	                                   URLs (GRPC_FRONT_URL, API_URL, WEB_URL...) set, then stop them
//
// `bazel run //:up` runs `stack up`; integration tests in any language run under `stack exec`
// (tools/stack/stack_test.bzl). Both use the same definitions (go/internal/stack).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tally-voting/tally/go/internal/stack"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, os.Args[2:], os.Stdout)
	case "exec":
		code, err = execCommand(ctx, os.Args[2:], os.Stderr)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stack: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: stack up [flags] | stack exec [flags] -- CMD [ARG...]  (stack up -h for flags)")
	os.Exit(2)
}

// programFlags are the locations of the servers' programs; Bazel passes runfiles paths.
type programFlags struct {
	kafkaJars, kafkaLog4j, ferretdb, java, redisServer string
	grpcFront, grpcProducer                            string
	consumer                                           string
	wasmEdge, wasmProducer                             string
	node, api, apiNodeModules                          string
	web, webDist                                       string
	ballot                                             string
	kafkaNodes                                         int
}

func (p *programFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.kafkaJars, "kafka-jars", "", "directory of the Kafka broker's jars (required)")
	fs.StringVar(&p.kafkaLog4j, "kafka-log4j", "", "log4j2 configuration for the broker (required)")
	fs.StringVar(&p.ferretdb, "ferretdb", "", "the MongoDB-wire server program (required)")
	fs.StringVar(&p.java, "java", "java", "the JVM that runs Kafka")
	fs.StringVar(&p.redisServer, "redis-server", "redis-server", "the Redis server program")
	fs.StringVar(&p.grpcFront, "grpc-front", "", "the gRPC route's HTTP front program (required)")
	fs.StringVar(&p.grpcProducer, "grpc-producer", "", "the gRPC producer program (required)")
	fs.StringVar(&p.consumer, "consumer", "", "the consumer program (required)")
	fs.StringVar(&p.wasmEdge, "wasmedge", "wasmedge", "the WasmEdge runtime")
	fs.StringVar(&p.wasmProducer, "wasm-producer", "", "the Wasm producer's AOT-compiled module (required)")
	fs.StringVar(&p.node, "node", "node", "the Node.js runtime that runs the API")
	fs.StringVar(&p.api, "api", "", "the Node API's package directory, src/server.js inside (required)")
	fs.StringVar(&p.apiNodeModules, "api-node-modules", "", "the API's node_modules directory (required)")
	fs.StringVar(&p.web, "web", "", "the webapp's server program (required)")
	fs.StringVar(&p.webDist, "web-dist", "", "the built webapp, Vite's dist directory (required)")
	fs.IntVar(&p.kafkaNodes, "kafka-nodes", 1, "Kafka's KRaft nodes: 1, or 3 for a cluster like the deployed one (replication 3, min.insync.replicas 2)")
	fs.StringVar(&p.ballot, "ballot", "", "the ballot both producers check votes against and the API serves, proto/ballot.json (required)")
}

// config resolves every program to an absolute path, failing on the first one missing.
func (p *programFlags) config(dataDir string, ports stack.Ports) (stack.Config, error) {
	cfg := stack.Config{DataDir: dataDir, Ports: ports, KafkaNodes: p.kafkaNodes}
	for _, f := range []struct {
		name string
		val  string
		dst  *string
		look bool
	}{
		{"kafka-jars", p.kafkaJars, &cfg.KafkaJars, false},
		{"kafka-log4j", p.kafkaLog4j, &cfg.KafkaLog4j, false},
		{"ferretdb", p.ferretdb, &cfg.FerretDB, false},
		{"java", p.java, &cfg.Java, true},
		{"redis-server", p.redisServer, &cfg.RedisServer, true},
		{"grpc-front", p.grpcFront, &cfg.GRPCFront, false},
		{"grpc-producer", p.grpcProducer, &cfg.GRPCProducer, false},
		{"consumer", p.consumer, &cfg.Consumer, false},
		{"wasmedge", p.wasmEdge, &cfg.WasmEdge, true},
		{"wasm-producer", p.wasmProducer, &cfg.WasmProducer, false},
		{"node", p.node, &cfg.Node, true},
		{"api", p.api, &cfg.API, false},
		{"api-node-modules", p.apiNodeModules, &cfg.APINodeModules, false},
		{"web", p.web, &cfg.Web, false},
		{"web-dist", p.webDist, &cfg.WebDist, false},
		{"ballot", p.ballot, &cfg.Ballot, false},
	} {
		if f.val == "" {
			return cfg, fmt.Errorf("-%s is required", f.name)
		}
		path := f.val
		if f.look && !strings.Contains(path, "/") {
			found, err := exec.LookPath(path)
			if err != nil {
				return cfg, fmt.Errorf("-%s: %w", f.name, err)
			}
			path = found
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return cfg, fmt.Errorf("-%s: %w", f.name, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return cfg, fmt.Errorf("-%s: %w", f.name, err)
		}
		*f.dst = abs
	}
	return cfg, nil
}

func up(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	var programs programFlags
	programs.register(fs)
	ports := stack.DefaultPorts
	defaultData := filepath.Join(envOr("TALLY_HOME", "/var/cache/tally"), "data")
	dataDir := fs.String("data-dir", defaultData, "where the servers keep their state (wipe it to start over)")
	fs.IntVar(&ports.Kafka, "kafka-port", ports.Kafka, "Kafka broker port")
	fs.IntVar(&ports.KafkaController, "kafka-controller-port", ports.KafkaController, "Kafka KRaft controller port")
	fs.IntVar(&ports.Redis, "redis-port", ports.Redis, "Redis port")
	fs.IntVar(&ports.Mongo, "mongo-port", ports.Mongo, "MongoDB-wire server port")
	fs.IntVar(&ports.GRPCFront, "grpc-front-port", ports.GRPCFront, "gRPC route's HTTP front port")
	fs.IntVar(&ports.WasmProducer, "wasm-producer-port", ports.WasmProducer, "Wasm producer's HTTP port")
	fs.IntVar(&ports.GRPCProducer, "grpc-producer-port", ports.GRPCProducer, "gRPC producer port")
	fs.IntVar(&ports.GRPCProducerHTTP, "grpc-producer-http-port", ports.GRPCProducerHTTP, "gRPC producer's health and metrics port")
	fs.IntVar(&ports.Consumer, "consumer-port", ports.Consumer, "consumer's health and metrics port")
	fs.IntVar(&ports.API, "api-port", ports.API, "Node API's HTTP port")
	fs.IntVar(&ports.Web, "web-port", ports.Web, "webapp's HTTP port (the page and its /api proxy)")
	_ = fs.Parse(args)

	// A cluster's data cannot share a dir with one node's (other cluster id, topics of one
	// replica): by default it has a dir of its own.
	if *dataDir == defaultData && programs.kafkaNodes > 1 {
		*dataDir = fmt.Sprintf("%s-kafka-%d-nodes", defaultData, programs.kafkaNodes)
	}
	cfg, err := programs.config(*dataDir, ports)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockUp(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := ports.CheckFree(); err != nil {
		return err
	}
	procs, err := cfg.Servers(cfg.Names()...)
	if err != nil {
		return err
	}

	started := time.Now()
	fmt.Fprintf(out, "starting %d servers (data in %s)\n", len(procs), cfg.DataDir)
	s, err := stack.Start(ctx, out, procs)
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Fprintf(out, "ready in %.1f s:\n", time.Since(started).Seconds())
	width := 0
	for _, p := range procs {
		width = max(width, len(p.Name))
	}
	for _, p := range procs {
		fmt.Fprintf(out, "  %-*s %s\n", width, p.Name, p.Addr)
	}
	fmt.Fprintln(out, "Ctrl-C stops everything.")

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping...")
		return nil
	case err := <-s.Exited():
		return fmt.Errorf("%w; stopping the rest", err)
	}
}

// lockUp makes a second //:up on the same data dir fail at once instead of fighting the first.
func lockUp(dataDir string) (func(), error) {
	path := filepath.Join(dataDir, "up.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another //:up is already running on %s (pid %s); stop it first (Ctrl-C in its terminal)",
			dataDir, strings.TrimSpace(string(holder)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return func() { f.Close(); os.Remove(path) }, nil
}

func execCommand(ctx context.Context, args []string, logs io.Writer) (int, error) {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	var programs programFlags
	programs.register(fs)
	servers := fs.String("servers", strings.Join(stack.ServerNames, ","), "comma-separated processes to start (with what they need)")
	keep := fs.Bool("keep", false, "keep the temp data dir afterwards (its path is printed)")
	var setenv envFlag
	fs.Var(&setenv, "setenv", "NAME=VALUE to add to CMD's environment, VALUE may use the stack's variables as ${NAME} (repeatable)")
	_ = fs.Parse(args)
	command := fs.Args()
	if len(command) == 0 {
		return 0, errors.New("exec: no command given after --")
	}

	// Under Bazel the data dir lives in the test's own temp dir, so parallel tests never share.
	dataDir, err := os.MkdirTemp(os.Getenv("TEST_TMPDIR"), "tally-stack-")
	if err != nil {
		return 0, err
	}
	if *keep {
		fmt.Fprintf(logs, "stack: data kept in %s\n", dataDir)
	} else {
		defer os.RemoveAll(dataDir)
	}
	ports, err := stack.FreePorts()
	if err != nil {
		return 0, err
	}
	cfg, err := programs.config(dataDir, ports)
	if err != nil {
		return 0, err
	}
	procs, err := cfg.Servers(strings.Split(*servers, ",")...)
	if err != nil {
		return 0, err
	}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	started := time.Now()
	s, err := stack.Start(ctx, logs, procs)
	if err != nil {
		return 0, err
	}
	defer s.Stop()
	logger.Info("stack ready", "servers", *servers, "took", time.Since(started).Round(time.Millisecond))

	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	stackEnv := append(cfg.Env(), "TALLY_STACK_DATA_DIR="+dataDir)
	cmd.Env = append(append(os.Environ(), stackEnv...), setenv.expand(stackEnv)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stack.StopTimeout
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), nil
	case err != nil:
		return 0, fmt.Errorf("run %s: %w", command[0], err)
	}
	return 0, nil
}

// envFlag collects --setenv NAME=VALUE flags: how a test reads a stack address under a name of its
// own (a contract suite's PRODUCER_URL=${GRPC_FRONT_URL}, say).
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

// expand resolves ${NAME} in each value against the stack's variables (KEY=VALUE entries).
func (e envFlag) expand(stackEnv []string) []string {
	vars := map[string]string{}
	for _, kv := range stackEnv {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var out []string
	for _, kv := range e {
		name, value, _ := strings.Cut(kv, "=")
		out = append(out, name+"="+os.Expand(value, func(k string) string { return vars[k] }))
	}
	return out
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
