package voterpc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tally-voting/tally/go/internal/reqlog"
)

// Metrics of the gRPC producer.
type Metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	kafkaErrors prometheus.Counter
}

// NewMetrics registers the gRPC producer's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_grpc_requests_total",
			Help: "gRPC calls answered, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_grpc_request_duration_seconds",
			Help:    "Time to answer a gRPC call, by method.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 15),
		}, []string{"method"}),
		kafkaErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_kafka_errors_total",
			Help: "Votes that Kafka did not acknowledge (answered Unavailable).",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.kafkaErrors)
	return m
}

func (m *Metrics) kafkaError() {
	if m != nil {
		m.kafkaErrors.Inc()
	}
}

// Observe is the server's unary interceptor: one log line and metrics per call, and a panic in
// a handler becomes an Internal error instead of ending the process.
func Observe(logger *slog.Logger, m *Metrics) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		ctx = reqlog.Open(ctx)
		defer func() {
			if p := recover(); p != nil {
				logger.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
			took := time.Since(start)
			code := status.Code(err)
			if m != nil {
				m.requests.WithLabelValues(info.FullMethod, code.String()).Inc()
				m.latency.WithLabelValues(info.FullMethod).Observe(took.Seconds())
			}
			attrs := append([]slog.Attr{
				slog.String("method", info.FullMethod),
				slog.String("code", code.String()),
				slog.Float64("took_ms", float64(took.Microseconds())/1000),
			}, reqlog.Attrs(ctx)...)
			if err != nil {
				attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
			}
			level := slog.LevelInfo
			if code == codes.Internal || code == codes.Unavailable || code == codes.Unknown {
				level = slog.LevelWarn
			}
			logger.LogAttrs(ctx, level, "rpc", attrs...)
		}()
		return handler(ctx, req)
	}
}
