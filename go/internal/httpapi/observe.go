package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-voting/tally/go/internal/reqlog"
)

// Metrics are the request metrics every HTTP server of Tally exports.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// LatencyBuckets span 0.25 ms to about 4 s: a vote is accepted in milliseconds when all is well.
var LatencyBuckets = prometheus.ExponentialBuckets(0.00025, 2, 15)

// NewMetrics registers the request metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_http_requests_total",
			Help: "HTTP requests answered, by path, method and status code.",
		}, []string{"path", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_http_request_duration_seconds",
			Help:    "Time from a request's headers to its response, by path.",
			Buckets: LatencyBuckets,
		}, []string{"path"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// quietPaths are logged at debug level when they succeed.
var quietPaths = []string{"/healthz", "/readyz", "/metrics"}

// Observe wraps next so each request is counted, timed and logged in one line (plus whatever the
// handler added with reqlog.Add). Paths outside paths are labelled "other", keeping label sets small.
func Observe(next http.Handler, logger *slog.Logger, m *Metrics, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		ctx := reqlog.Open(r.Context())
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		took := time.Since(start)
		path := "other"
		if slices.Contains(paths, r.URL.Path) {
			path = r.URL.Path
		}
		method := r.Method
		if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, method) {
			method = "other"
		}
		m.requests.WithLabelValues(path, method, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(path).Observe(took.Seconds())
		attrs := append([]slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Float64("took_ms", float64(took.Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		}, reqlog.Attrs(ctx)...)
		level := slog.LevelInfo
		switch {
		case sw.status >= 500:
			level = slog.LevelWarn
		case sw.status < 400 && slices.Contains(quietPaths, r.URL.Path):
			// Probes and scrapes come every few seconds from every kubelet and Prometheus; their
			// successes would drown the votes' lines.
			level = slog.LevelDebug
		}
		logger.LogAttrs(ctx, level, "request", attrs...)
	})
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
