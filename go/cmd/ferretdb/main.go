// Command ferretdb serves the MongoDB wire protocol on top of SQLite, for local runs and tests.
//
// No real mongod is obtainable here; FerretDB v1.24.2 is, as an embeddable Go package. This main
// wires that package with the SQLite backend and nothing else (no telemetry, no PostgreSQL).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// DefaultGCPercent is the Go collector's GOGC unless the variable says otherwise.
const DefaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		// Every insert decodes and re-encodes its documents, and almost all of that is garbage
		// at once: at the default 100 the collector was 12 % of the server's CPU at 5,000 votes/s,
		// the CPU the inserts wait for. At 400 the accept-to-counted p99 there fell in each of
		// six steps, by an eighth to a half, for about 12 MiB more resident memory
		// (docs/performance.md, "Seventh round").
		debug.SetGCPercent(DefaultGCPercent)
	}
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	dataDir := flag.String("data-dir", "", "directory for the SQLite databases (required)")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if on := os.Getenv("DEBUG_PPROF"); on == "1" || on == "true" {
		servePprof()
	}
	if err := run(ctx, logger, *listen, *dataDir); err != nil {
		logger.Error("ferretdb stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, listen, dataDir string) error {
	if dataDir == "" {
		return fmt.Errorf("-data-dir is required")
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		return fmt.Errorf("start ferretdb: %w", err)
	}
	fmt.Fprintf(os.Stderr, "serving the MongoDB wire protocol on %s, data in %s\n", listen, abs)
	return f.Run(ctx)
}

// servePprof serves Go's profiles on a free loopback port when DEBUG_PPROF is on (benchmarks find
// it among the process's listening ports); off by default.
func servePprof() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "DEBUG_PPROF: %v\n", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	fmt.Fprintf(os.Stderr, "DEBUG_PPROF is on: Go profiles on http://%s/debug/pprof/\n", ln.Addr())
	go http.Serve(ln, mux)
}
