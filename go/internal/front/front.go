// Package front is the HTTP front of the gRPC route: it serves the producer contract of
// docs/api.md (POST /votes, health, metrics), validates each vote with go/internal/vote, and
// casts it over one shared gRPC connection to the gRPC producer, which writes it to Kafka.
package front

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tally-voting/tally/go/internal/badrequest"
	"github.com/tally-voting/tally/go/internal/httpapi"
	"github.com/tally-voting/tally/go/internal/reqlog"
	"github.com/tally-voting/tally/go/internal/vote"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// The contract's limits and names (docs/api.md).
const (
	// MaxBodyBytes is the largest vote body accepted; larger ones get 413.
	MaxBodyBytes = 4 << 10
	// IdempotencyKeyHeader carries a client-chosen vote id (vote.CheckID says what is allowed).
	IdempotencyKeyHeader = "Idempotency-Key"
	// RetryAfterSeconds is the Retry-After of a 503.
	RetryAfterSeconds = "1"
)

// Paths served.
const (
	PathVotes   = "/votes"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
)

// Options of the front's handler.
type Options struct {
	// Votes and Health are clients over the one connection to the gRPC producer.
	Votes  votev1.VoteServiceClient
	Health healthpb.HealthClient
	// Timeout bounds one CastVote call (default 6 s; more than the producer's Kafka write timeout,
	// so the producer's own answer arrives first).
	Timeout time.Duration
	// Now is the clock for the year rule (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Registry receives the front's metrics and is what /metrics serves.
	Registry *prometheus.Registry
	// RateLimit limits each client's POST /votes (off when its PerSecond is 0).
	RateLimit httpapi.RateLimit
}

type handler struct {
	votes       votev1.VoteServiceClient
	health      healthpb.HealthClient
	timeout     time.Duration
	now         func() time.Time
	queueErrors prometheus.Counter
}

// New returns the front's whole HTTP handler.
func New(o Options) http.Handler {
	if o.Timeout <= 0 {
		o.Timeout = 6 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &handler{votes: o.Votes, health: o.Health, timeout: o.Timeout, now: o.Now,
		queueErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_kafka_errors_total",
			Help: "Votes refused with 503 because the vote queue (the gRPC producer or Kafka behind it) was unavailable.",
		}),
	}
	o.Registry.MustRegister(h.queueErrors)
	metrics := httpapi.NewMetrics(o.Registry)

	mux := http.NewServeMux()
	mux.HandleFunc(PathVotes, h.castVote)
	mux.Handle(PathHealthz, httpapi.Healthz())
	mux.Handle(PathReadyz, httpapi.Readyz(h.ready))
	promHandler := promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})
	mux.HandleFunc(PathMetrics, func(w http.ResponseWriter, r *http.Request) {
		if httpapi.Allow(w, r, http.MethodGet, http.MethodHead) {
			promHandler.ServeHTTP(w, r)
		}
	})
	mux.HandleFunc("/", httpapi.NotFound)
	limited := o.RateLimit.Limit(bodilessClose(exactPaths(mux)), o.Now, PathVotes)
	return httpapi.Observe(limited, o.Logger, metrics, PathVotes, PathHealthz, PathReadyz, PathMetrics)
}

// exactPaths answers 404 itself for anything ServeMux would redirect or clean ("//votes",
// "/votes/../votes"), so the contract's paths match exactly and nothing else does.
func exactPaths(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathVotes, PathHealthz, PathReadyz, PathMetrics:
			mux.ServeHTTP(w, r)
		default:
			httpapi.NotFound(w, r)
		}
	})
}

// bodilessClose closes the connection after a request with a body to a path that reads none
// (health, metrics, unknown paths): net/http would read and drop up to 256 KiB of it to keep the
// connection, the Wasm producer closes, and both routes must treat what follows alike.
func bodilessClose(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathVotes && r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// ready: the gRPC producer reports SERVING, which it does only while Kafka is reachable.
func (h *handler) ready(ctx context.Context) error {
	resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{Service: votev1.VoteService_ServiceDesc.ServiceName})
	if err != nil {
		return errors.New("gRPC producer unreachable: " + status.Convert(err).Message())
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return errors.New("gRPC producer is " + s.String())
	}
	return nil
}

func (h *handler) castVote(w http.ResponseWriter, r *http.Request) {
	if !httpapi.Allow(w, r, http.MethodPost) {
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		httpapi.RefuseUnread(w, http.StatusUnsupportedMediaType,
			"Content-Type must be application/json (charset, if given, utf-8)", "Content-Type")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	id, err := idempotencyKey(r.Header)
	if err != nil {
		reqlog.Add(r.Context(), slog.String("field", IdempotencyKeyHeader))
		httpapi.WriteError(w, http.StatusBadRequest, IdempotencyKeyHeader+": "+err.Error(), IdempotencyKeyHeader)
		return
	}
	v, err := vote.Parse(body, h.now())
	if err != nil {
		var fe *vote.FieldError
		if !errors.As(err, &fe) {
			fe = &vote.FieldError{Field: "body", Reason: err.Error()}
		}
		reqlog.Add(r.Context(), slog.String("field", fe.Field))
		httpapi.WriteError(w, http.StatusBadRequest, fe.Error(), fe.Field)
		return
	}

	// Not cancelled with the request: a client that half-closes after its vote (or goes away) does
	// not stop a write that may already be in Kafka; the call is bounded by the timeout alone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer cancel()
	resp, err := h.votes.CastVote(ctx, &votev1.CastVoteRequest{Vote: &votev1.Vote{
		Name: v.Name, Album: v.Album, Year: v.Year, Rank: v.Rank, VoteId: id,
	}})
	if err != nil {
		h.castFailed(w, r, err)
		return
	}
	reqlog.Add(r.Context(), slog.String("vote_id", resp.GetVoteId()))
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]string{"id": resp.GetVoteId()})
}

// castFailed maps the producer's answer onto the contract's statuses.
func (h *handler) castFailed(w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	reqlog.Add(r.Context(), slog.String("grpc_code", st.Code().String()), slog.String("error", st.Message()))
	switch st.Code() {
	case codes.InvalidArgument:
		// The producer's ballot check (the front checks only the format rules) or a bug: say which field.
		field, reason, ok := badrequest.Violation(err)
		switch name, isVoteField := badrequest.VoteField(field); {
		case !ok:
			field, reason = "body", st.Message()
		case field == badrequest.FieldVoteID:
			field = IdempotencyKeyHeader
		case isVoteField:
			field = name
		default:
			field = "body"
		}
		httpapi.WriteError(w, http.StatusBadRequest, field+": "+reason, field)
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
		if r.Context().Err() == nil { // not merely the client hanging up
			h.queueErrors.Inc()
		}
		w.Header().Set("Retry-After", RetryAfterSeconds)
		httpapi.WriteError(w, http.StatusServiceUnavailable,
			"vote queue unavailable; retry later with the same Idempotency-Key", "")
	default:
		httpapi.WriteError(w, http.StatusInternalServerError, "internal error", "")
	}
}

// isJSON accepts application/json, with at most a utf-8 charset parameter.
func isJSON(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// readBody reads at most MaxBodyBytes, answering 413 for more (at once when Content-Length says so).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := func() {
		httpapi.RefuseUnread(w, http.StatusRequestEntityTooLarge, "body larger than 4096 bytes", "body")
	}
	if r.ContentLength > MaxBodyBytes {
		tooLarge()
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
		} else {
			httpapi.WriteError(w, http.StatusBadRequest, "body could not be read: "+err.Error(), "body")
		}
		return nil, false
	}
	return body, true
}

// idempotencyKey is the client's vote id: "" when absent, an error when given but not acceptable.
func idempotencyKey(h http.Header) (string, error) {
	values := h.Values(IdempotencyKeyHeader)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], vote.CheckID(values[0])
	default:
		return "", errors.New("must be given once")
	}
}
