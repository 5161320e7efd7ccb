// Command consumer counts votes: it reads topic votes as a member of the consumer group, logs
// every vote in MongoDB, counts it exactly once in Redis and commits the offsets only then
// (go/internal/consume says how). It serves /healthz, /readyz and /metrics on HTTP_ADDR.
// README.md lists its configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/consume"
	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/httpapi"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/readiness"
	"github.com/tally-voting/tally/go/internal/service"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// DefaultMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT says otherwise.
const DefaultMemoryLimit = 64 << 20

func main() {
	service.Main("consumer", configFromEnv, func(c Config) slog.Level { return c.LogLevel }, run)
}

// run consumes until ctx ends, then finishes the batches in hand, commits, leaves the group and
// returns nil.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// Most of what a backlog's batches allocate is garbage at once (the MongoDB driver alone
		// allocates a 4 KiB reader per document it inserts); a soft limit makes the collector run
		// before the heap doubles. At 32 MiB the collector took over half the consumer's CPU and
		// slowed the drain; 64 MiB keeps the peak RSS near 90 MiB (docs/performance.md).
		// GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}

	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()

	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURL).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return fmt.Errorf("MONGO_URL: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = mc.Disconnect(dctx)
	}()

	kafkaLog := func(level slog.Level) kafka.LoggerFunc {
		return func(msg string, args ...any) {
			log.Log(context.Background(), level, "kafka: "+fmt.Sprintf(msg, args...))
		}
	}
	group, partitions, leave, err := consume.NewKafka(consume.KafkaConfig{
		Brokers:        cfg.KafkaBrokers,
		SessionTimeout: cfg.SessionTimeout,
		QueueCapacity:  min(cfg.Loop.BatchSize, 256),
		Logger:         kafkaLog(slog.LevelDebug),
		ErrorLogger:    kafkaLog(slog.LevelWarn),
	})
	if err != nil {
		return err
	}
	inGroup := true
	defer func() {
		if inGroup {
			leave()
		}
	}()
	dlq := &kafka.Writer{
		Addr:         kafka.TCP(cfg.KafkaBrokers...),
		Topic:        queue.DeadLetterTopic,
		RequiredAcks: kafka.RequireAll, // a poison record is committed only once every replica has its copy
		BatchTimeout: 10 * time.Millisecond,
		ErrorLogger:  kafkaLog(slog.LevelWarn),
	}
	defer dlq.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := consume.NewMetrics(reg)
	health := readiness.New("redis", "mongo", "kafka")

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	var h http.Handler = handler(health, reg)
	if cfg.Pprof {
		h = httpapi.WithPprof(h)
		log.Warn("serving Go profiles under /debug/pprof/ (" + httpapi.PprofEnv + " is on)")
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server failed", "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	go health.Watch(ctx, log, "redis", time.Second, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	go health.Watch(ctx, log, "mongo", time.Second, func(ctx context.Context) error { return mc.Ping(ctx, nil) })
	go health.Watch(ctx, log, "kafka", time.Second, func(ctx context.Context) error { return queue.Reachable(ctx, cfg.KafkaBrokers) })

	log.Info("consumer starting", "brokers", cfg.KafkaBrokers, "group", consume.Group, "topic", queue.VotesTopic,
		"http", ln.Addr().String(), "batch_size", cfg.Loop.BatchSize, "batch_wait", cfg.Loop.BatchWait)
	store := counts.New(rdb)
	loop := consume.New(cfg.Loop, consume.Deps{
		Group:       group,
		Partitions:  partitions,
		Counts:      store,
		Logs:        votelog.New(mc.Database(votelog.Database)),
		DeadLetters: dlq,
		Health:      health,
		Metrics:     metrics,
		Log:         log,
		Topic:       &consume.TopicCheck{Kafka: consume.NewTopicReader(cfg.KafkaBrokers), Anchors: store, Health: health, Log: log},
	})
	runErr := loop.Run(ctx)
	health.Set("shutdown", errors.New("shutting down"))
	// Closing the group waits for every partition's batch in hand, then leaves: the partitions go
	// to the other members at once, not after the session timeout.
	inGroup = false
	if err := leave(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("leave the consumer group: %w", err))
	}
	if runErr == nil {
		log.Info("consumer stopped: batches finished and committed, group left")
	}
	return runErr
}

// handler serves the consumer's health and metrics, in JSON like the other services.
func handler(health *readiness.Checks, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", httpapi.Healthz())
	mux.Handle("/readyz", httpapi.Readyz(func(context.Context) error { return health.Err() }))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}
