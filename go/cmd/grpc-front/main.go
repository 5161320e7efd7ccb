// Command grpc-front is the gRPC route's HTTP front (the "gRPC client"): load generators POST
// votes to it as docs/api.md describes, and it casts each one over a single shared gRPC
// connection to grpc-producer, answering 202 once Kafka acknowledged the vote. Settings come
// from the environment (README.md); SIGTERM stops accepting, finishes requests in flight, exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tally-voting/tally/go/internal/envconf"
	"github.com/tally-voting/tally/go/internal/front"
	"github.com/tally-voting/tally/go/internal/httpapi"
	"github.com/tally-voting/tally/go/internal/service"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// Config is the front's settings; README.md documents each variable.
type Config struct {
	HTTPAddr        string
	ProducerTarget  string
	ProducerTimeout time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	// Pprof serves net/http/pprof under /debug/pprof/ on HTTP_ADDR (off by default).
	Pprof bool
	// Clients bound slow, idle and too many clients; RateLimit each client's votes.
	Clients   httpapi.ClientLimits
	RateLimit httpapi.RateLimit
}

func configFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.Reader{Get: getenv}
	cfg := Config{
		HTTPAddr:        r.String("HTTP_ADDR", ":8080"),
		ProducerTarget:  r.String("PRODUCER_GRPC_TARGET", "127.0.0.1:50051"),
		ProducerTimeout: r.Duration("PRODUCER_TIMEOUT", 6*time.Second),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 8*time.Second),
		LogLevel:        r.LogLevel("LOG_LEVEL", slog.LevelInfo),
		Pprof:           r.Bool(httpapi.PprofEnv, false),
		Clients:         httpapi.ReadClientLimits(&r),
		RateLimit:       httpapi.ReadRateLimit(&r),
	}
	return cfg, r.Err()
}

func main() {
	service.Main("grpc-front", configFromEnv, func(c Config) slog.Level { return c.LogLevel }, run)
}

// run serves until ctx is done, then closes the listener, lets requests in flight finish (each
// one's CastVote included) and closes the gRPC connection.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	// One connection for every request; gRPC multiplexes concurrent calls over it.
	conn, err := grpc.NewClient(cfg.ProducerTarget, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("gRPC client for %s: %w", cfg.ProducerTarget, err)
	}
	defer conn.Close()
	conn.Connect()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler := front.New(front.Options{
		Votes:     votev1.NewVoteServiceClient(conn),
		Health:    healthpb.NewHealthClient(conn),
		Timeout:   cfg.ProducerTimeout,
		Logger:    log,
		Registry:  reg,
		RateLimit: cfg.RateLimit,
	})
	if cfg.Pprof {
		handler = httpapi.WithPprof(handler)
		log.Warn("serving Go profiles under /debug/pprof/ (" + httpapi.PprofEnv + " is on)")
	}
	srv := &http.Server{
		Handler:        handler,
		WriteTimeout:   cfg.Clients.HeaderTimeout + cfg.Clients.BodyTimeout + cfg.ProducerTimeout + 5*time.Second,
		MaxHeaderBytes: 16 << 10,
		// "OPTIONS *" is an unknown path (404) like any other, not net/http's own 200.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	cfg.Clients.Apply(srv)
	log.Info("grpc-front serving", "http_addr", ln.Addr().String(), "producer", cfg.ProducerTarget,
		"max_connections", cfg.Clients.MaxConnections, "rate_limit_per_second", cfg.RateLimit.PerSecond)
	err = httpapi.Serve(ctx, srv, cfg.Clients.Listener(ln, log), cfg.ShutdownTimeout)
	if err := conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("close gRPC connection", "error", err.Error())
	}
	if err != nil {
		return err
	}
	log.Info("grpc-front stopped")
	return nil
}
