// Command grpc-producer is the gRPC route's server: it serves tally.vote.v1.VoteService and the
// standard grpc.health.v1 service, and writes each accepted vote to Kafka through one shared
// writer (acks=all), answering only once Kafka acknowledged it. Health and metrics are also served
// over HTTP. Settings come from the environment (README.md); SIGTERM drains and exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tally-voting/tally/go/internal/envconf"
	"github.com/tally-voting/tally/go/internal/httpapi"
	"github.com/tally-voting/tally/go/internal/produce"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/readiness"
	"github.com/tally-voting/tally/go/internal/service"
	"github.com/tally-voting/tally/go/internal/vote"
	"github.com/tally-voting/tally/go/internal/voterpc"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// Config is the producer's settings; README.md documents each variable.
type Config struct {
	GRPCAddr          string
	HTTPAddr          string
	KafkaBrokers      []string
	KafkaBatchTimeout time.Duration
	KafkaWriteTimeout time.Duration
	KafkaCheckEvery   time.Duration
	ShutdownTimeout   time.Duration
	LogLevel          slog.Level
	// Pprof serves net/http/pprof under /debug/pprof/ on HTTP_ADDR (off by default).
	Pprof bool
	// Ballot is the ballot file votes must be on (proto/ballot.json), or vote.BallotOff.
	Ballot string
}

func configFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.Reader{Get: getenv}
	cfg := Config{
		GRPCAddr:          r.String("GRPC_ADDR", ":50051"),
		HTTPAddr:          r.String("HTTP_ADDR", ":9101"),
		KafkaBrokers:      r.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"}),
		KafkaBatchTimeout: r.Duration("KAFKA_BATCH_TIMEOUT", 5*time.Millisecond),
		KafkaWriteTimeout: r.Duration("KAFKA_WRITE_TIMEOUT", 5*time.Second),
		KafkaCheckEvery:   r.Duration("KAFKA_CHECK_INTERVAL", time.Second),
		ShutdownTimeout:   r.Duration("SHUTDOWN_TIMEOUT", 8*time.Second),
		LogLevel:          r.LogLevel("LOG_LEVEL", slog.LevelInfo),
		Pprof:             r.Bool(httpapi.PprofEnv, false),
		Ballot:            r.String("TALLY_BALLOT", vote.BallotOff),
	}
	return cfg, r.Err()
}

func main() {
	service.Main("grpc-producer", configFromEnv, func(c Config) slog.Level { return c.LogLevel }, run)
}

// run serves until ctx is done, then stops taking calls, lets calls in flight finish (their
// records are acknowledged by then), closes the Kafka writer and returns.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	ballot, err := vote.LoadBallot(cfg.Ballot)
	if err != nil {
		return err
	}
	grpcLn, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen for gRPC: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLn.Close()
		return fmt.Errorf("listen for HTTP: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := voterpc.NewMetrics(reg)

	writer := produce.NewWriter(produce.Config{
		Brokers:      cfg.KafkaBrokers,
		BatchTimeout: cfg.KafkaBatchTimeout,
		WriteTimeout: cfg.KafkaWriteTimeout,
		ClientID:     "tally-grpc-producer",
	})
	hs := health.NewServer()
	ready := readiness.New("kafka")
	voterpc.ReportHealth(hs, ready)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(voterpc.Observe(log, metrics)))
	votev1.RegisterVoteServiceServer(srv, voterpc.NewServer(writer, voterpc.Options{
		WriteTimeout: cfg.KafkaWriteTimeout,
		Metrics:      metrics,
		Ballot:       ballot,
	}))
	healthpb.RegisterHealthServer(srv, hs)

	mux := http.NewServeMux()
	mux.Handle("/healthz", httpapi.Healthz())
	mux.Handle("/readyz", httpapi.Readyz(func(context.Context) error { return ready.Err() }))
	promHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if httpapi.Allow(w, r, http.MethodGet, http.MethodHead) {
			promHandler.ServeHTTP(w, r)
		}
	})
	mux.HandleFunc("/", httpapi.NotFound)
	httpHandler := httpapi.Observe(mux, log, httpapi.NewMetrics(reg), "/healthz", "/readyz", "/metrics")
	if cfg.Pprof {
		httpHandler = httpapi.WithPprof(httpHandler)
		log.Warn("serving Go profiles under /debug/pprof/ (" + httpapi.PprofEnv + " is on)")
	}
	httpSrv := &http.Server{
		Handler:           httpHandler,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// Cancelled on a signal, or when either server fails: everything then stops in order.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go ready.Watch(runCtx, log, "kafka", cfg.KafkaCheckEvery, func(ctx context.Context) error {
		return queue.Reachable(ctx, cfg.KafkaBrokers)
	})
	grpcDone := make(chan error, 1)
	go func() { grpcDone <- srv.Serve(grpcLn) }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpapi.Serve(runCtx, httpSrv, httpLn, cfg.ShutdownTimeout) }()
	log.Info("grpc-producer serving", "grpc_addr", grpcLn.Addr().String(), "http_addr", httpLn.Addr().String(),
		"kafka_brokers", strings.Join(cfg.KafkaBrokers, ","), "ballot", cfg.Ballot)

	var errs []error
	select {
	case <-ctx.Done():
		log.Info("grpc-producer stopping: finishing calls in flight")
	case err := <-grpcDone:
		errs = append(errs, fmt.Errorf("serve gRPC: %w", err))
	case err := <-httpDone:
		errs = append(errs, err)
		httpDone <- nil // already reported
	}
	stopRun()
	hs.Shutdown() // every service NOT_SERVING from now on
	if !stopGracefully(srv, cfg.ShutdownTimeout) {
		errs = append(errs, fmt.Errorf("gRPC calls still in flight after %s were cut", cfg.ShutdownTimeout))
	}
	if err := writer.Close(); err != nil { // flushes anything still batched
		errs = append(errs, fmt.Errorf("close kafka writer: %w", err))
	}
	if err := <-httpDone; err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("grpc-producer stopped")
	}
	return errors.Join(errs...)
}

// stopGracefully lets calls in flight finish, cutting them after timeout; false if it had to.
func stopGracefully(srv *grpc.Server, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		srv.Stop()
		<-done
		return false
	}
}
