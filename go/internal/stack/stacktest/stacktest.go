// Package stacktest gives Go tests that drive go/internal/stack themselves (to stop Kafka, kill
// the consumer, ...) a stack.Config over the programs Bazel put in their runfiles, and a buffer
// for the processes' logs. BUILD files pass the programs with STACK_TEST_DATA and STACK_TEST_ENV
// (tools/stack/stack_test.bzl), as STACK_<FLAG> variables named after go/cmd/stack's flags.
package stacktest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tally-voting/tally/go/internal/stack"
)

// Config is a stack on free ports in a temp dir of the test's own, with every program the
// test's BUILD target provides. Outside Bazel the test is skipped.
func Config(tb testing.TB) stack.Config {
	tb.Helper()
	if os.Getenv("STACK_KAFKA_JARS") == "" {
		tb.Skip("STACK_* variables are not set: run this test with tools/bazel test")
	}
	path := func(name string) string {
		rel := os.Getenv(name)
		if rel == "" {
			return ""
		}
		return filepath.Join(os.Getenv("TEST_SRCDIR"), "_main", rel)
	}
	ports, err := stack.FreePorts()
	if err != nil {
		tb.Fatal(err)
	}
	return stack.Config{
		DataDir:        tb.TempDir(),
		Ports:          ports,
		Java:           "/usr/bin/java",
		KafkaJars:      path("STACK_KAFKA_JARS"),
		KafkaLog4j:     path("STACK_KAFKA_LOG4J"),
		RedisServer:    "/usr/bin/redis-server",
		FerretDB:       path("STACK_FERRETDB"),
		GRPCFront:      path("STACK_GRPC_FRONT"),
		GRPCProducer:   path("STACK_GRPC_PRODUCER"),
		Consumer:       path("STACK_CONSUMER"),
		WasmEdge:       "/usr/bin/wasmedge",
		WasmProducer:   path("STACK_WASM_PRODUCER"),
		Node:           "/usr/bin/node",
		API:            path("STACK_API"),
		APINodeModules: path("STACK_API_NODE_MODULES"),
		Web:            path("STACK_WEB"),
		WebDist:        path("STACK_WEB_DIST"),
		Ballot:         path("STACK_BALLOT"),
	}
}

// Start starts the named servers of cfg (with what they need) for t, stops them when t ends, and
// prints their logs if t failed.
func Start(ctx context.Context, t testing.TB, cfg stack.Config, names ...string) *stack.Stack {
	t.Helper()
	procs, err := cfg.Servers(names...)
	if err != nil {
		t.Fatal(err)
	}
	var logs LogBuffer
	s, err := stack.Start(ctx, &logs, procs)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("stack logs:\n%s", logs.String())
		}
	})
	return s
}

// LogBuffer collects the output of several processes at once; tests print it when they fail.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail is the last n bytes written.
func (b *LogBuffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	return s[max(0, len(s)-n):]
}
