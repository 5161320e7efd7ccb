package voterpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tally-voting/tally/go/internal/badrequest"
	"github.com/tally-voting/tally/go/internal/queue"
	"github.com/tally-voting/tally/go/internal/readiness"
	"github.com/tally-voting/tally/go/internal/vote"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// fakeKafka stands in for the Kafka writer in these unit tests only.
type fakeKafka struct {
	mu   sync.Mutex
	msgs []kafka.Message
	err  error
	// hang makes a write wait until its context ends, and record how long it was given.
	hang  bool
	given []time.Duration
	// together, if set, makes each write wait until that many writes are in flight at once.
	together int
	inFlight int
	all      chan struct{}
}

func (k *fakeKafka) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	k.mu.Lock()
	err, hang := k.err, k.hang
	if hang {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(time.Hour)
		}
		k.given = append(k.given, time.Until(deadline))
	}
	var all chan struct{}
	if k.together > 0 {
		k.inFlight++
		if k.inFlight == k.together {
			close(k.all)
		}
		all = k.all
	}
	k.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if all != nil {
		select {
		case <-all:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.msgs = append(k.msgs, msgs...)
	return nil
}

func (k *fakeKafka) written() []kafka.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]kafka.Message(nil), k.msgs...)
}

var clock = time.Date(2026, time.June, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	kafka    *fakeKafka
	client   votev1.VoteServiceClient
	registry *prometheus.Registry
	logs     *bytes.Buffer
}

// metrics is what /metrics would show.
func (f *fixture) metrics() string {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(f.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// newFixture serves a Server over a real gRPC connection (bufconn), so errors cross the wire.
func newFixture(t *testing.T, timeout time.Duration, ballot ...*vote.Ballot) *fixture {
	t.Helper()
	f := &fixture{kafka: &fakeKafka{}, registry: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	metrics := NewMetrics(f.registry)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(Observe(slog.New(slog.NewJSONHandler(f.logs, nil)), metrics)))
	opts := Options{WriteTimeout: timeout, Now: func() time.Time { return clock }, Metrics: metrics}
	if len(ballot) > 0 {
		opts.Ballot = ballot[0]
	}
	votev1.RegisterVoteServiceServer(srv, NewServer(f.kafka, opts))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///producer",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.client = votev1.NewVoteServiceClient(conn)
	return f
}

func cast(v *votev1.Vote) *votev1.CastVoteRequest { return &votev1.CastVoteRequest{Vote: v} }

func TestCastVoteWritesTheRecord(t *testing.T) {
	f := newFixture(t, time.Second)
	ctx := context.Background()
	resp, err := f.client.CastVote(ctx, cast(&votev1.Vote{Name: "  Bohemia Suburbana ", Album: "Club Atlético Bohemia", Year: 1998, Rank: 3}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(resp.GetVoteId())
	if err != nil || id.Version() != 7 {
		t.Fatalf("vote id %q is not a UUIDv7 (%v)", resp.GetVoteId(), err)
	}
	if resp.GetAcceptedAtUnixMs() != clock.UnixMilli() {
		t.Errorf("accepted at %d, want %d", resp.GetAcceptedAtUnixMs(), clock.UnixMilli())
	}
	msgs := f.kafka.written()
	if len(msgs) != 1 {
		t.Fatalf("%d records written", len(msgs))
	}
	rec, err := queue.Decode(msgs[0])
	if err != nil {
		t.Fatalf("record does not decode: %v", err)
	}
	if rec.Route != queue.RouteGRPC || rec.Vote.GetVoteId() != resp.GetVoteId() || string(msgs[0].Key) != resp.GetVoteId() ||
		rec.Vote.GetName() != "Bohemia Suburbana" || rec.Vote.GetYear() != 1998 || rec.Vote.GetRank() != 3 ||
		rec.Vote.GetAcceptedAtUnixMs() != clock.UnixMilli() {
		t.Fatalf("record = %+v %v", rec, rec.Vote)
	}

	// A client-chosen id is kept, so a retry is the same record.
	resp, err = f.client.CastVote(ctx, cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1, VoteId: "retry-7"}))
	if err != nil || resp.GetVoteId() != "retry-7" || string(f.kafka.written()[1].Key) != "retry-7" {
		t.Fatalf("client id: %v, %v", resp, err)
	}
	// Two ids the server makes differ.
	a, _ := f.client.CastVote(ctx, cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1}))
	b, _ := f.client.CastVote(ctx, cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1}))
	if a.GetVoteId() == b.GetVoteId() {
		t.Fatalf("two votes got one id %q", a.GetVoteId())
	}
}

// The server applies the vote rules itself and names the field; nothing invalid is written.
func TestCastVoteRejectsInvalid(t *testing.T) {
	f := newFixture(t, time.Second)
	for _, tc := range []struct {
		req   *votev1.CastVoteRequest
		field string
	}{
		{&votev1.CastVoteRequest{}, "vote"},
		{cast(&votev1.Vote{Album: "b", Year: 2000, Rank: 1}), "vote.name"},
		{cast(&votev1.Vote{Name: "a", Album: strings.Repeat("é", 101), Year: 2000, Rank: 1}), "vote.album"},
		{cast(&votev1.Vote{Name: "a", Album: "b", Year: 1899, Rank: 1}), "vote.year"},
		{cast(&votev1.Vote{Name: "a", Album: "b", Year: 2028, Rank: 1}), "vote.year"},
		{cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 11}), "vote.rank"},
		{cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1, VoteId: strings.Repeat("x", 129)}), badrequest.FieldVoteID},
		{cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1, VoteId: "new\nline"}), badrequest.FieldVoteID},
	} {
		_, err := f.client.CastVote(context.Background(), tc.req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", tc.req, err)
			continue
		}
		field, reason, ok := badrequest.Violation(err)
		if !ok || field != tc.field || reason == "" {
			t.Errorf("%v: violation %q %q %v, want field %q", tc.req, field, reason, ok, tc.field)
		}
	}
	if n := len(f.kafka.written()); n != 0 {
		t.Fatalf("%d invalid votes written", n)
	}
}

// The ballot: a well-formed vote off it is InvalidArgument naming the first field off it, and
// is never written; one on it is written.
func TestCastVoteRefusesVotesOffTheBallot(t *testing.T) {
	ballot, err := vote.LoadBallot("../../../proto/ballot.json") // in the test's data under Bazel
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, time.Second, ballot)
	for _, tc := range []struct {
		v     *votev1.Vote
		field string
	}{
		{&votev1.Vote{Name: "Los Made Up", Album: "Conquista", Year: 1982, Rank: 1}, "vote.name"},
		{&votev1.Vote{Name: "Bohemia Suburbana", Album: "Conquista", Year: 1982, Rank: 1}, "vote.album"},
		{&votev1.Vote{Name: "Alux Nahual", Album: "Conquista", Year: 1983, Rank: 1}, "vote.year"},
		{&votev1.Vote{Name: "Los Made Up", Album: "x", Year: 2000, Rank: 0}, "vote.rank"}, // format first
	} {
		_, err := f.client.CastVote(context.Background(), cast(tc.v))
		if field, _, ok := badrequest.Violation(err); !ok || field != tc.field {
			t.Errorf("%v: %v, want InvalidArgument on %s", tc.v, err, tc.field)
		}
	}
	if n := len(f.kafka.written()); n != 0 {
		t.Fatalf("%d votes off the ballot written", n)
	}
	if _, err := f.client.CastVote(context.Background(), cast(&votev1.Vote{Name: " Alux Nahual", Album: "Conquista", Year: 1982, Rank: 1})); err != nil {
		t.Fatalf("a vote on the ballot: %v", err)
	}
}

func TestCastVoteKafkaFailureIsUnavailable(t *testing.T) {
	f := newFixture(t, 100*time.Millisecond)
	valid := cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1})

	f.kafka.err = errors.New("dial tcp: connection refused")
	if _, err := f.client.CastVote(context.Background(), valid); status.Code(err) != codes.Unavailable {
		t.Fatalf("kafka error: %v, want Unavailable", err)
	}
	// A write that never returns: the call gets a deadline of the write timeout (100 ms), not
	// the client's (a minute), and answers Unavailable once it passes.
	f.kafka.mu.Lock()
	f.kafka.err, f.kafka.hang = nil, true
	f.kafka.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.client.CastVote(ctx, valid); status.Code(err) != codes.Unavailable {
		t.Fatalf("kafka too slow: %v, want Unavailable", err)
	}
	f.kafka.mu.Lock()
	given := f.kafka.given
	f.kafka.mu.Unlock()
	if len(given) != 1 || given[0] > 100*time.Millisecond {
		t.Errorf("the write was given %v, want at most the write timeout of 100ms", given)
	}
	metrics := f.metrics()
	for _, want := range []string{
		"tally_kafka_errors_total 2",
		`tally_grpc_requests_total{code="Unavailable",method="/tally.vote.v1.VoteService/CastVote"} 2`,
		`tally_grpc_request_duration_seconds_count{method="/tally.vote.v1.VoteService/CastVote"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var line map[string]any
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &line) != nil || line["code"] != "Unavailable" || line["kafka_error"] == nil || line["vote_id"] == nil {
		t.Errorf("log lines: %q", lines)
	}
}

// Concurrent calls are all in flight at once: the writer is shared, never serialised by the
// server. Each write waits until all 50 are in flight, which serialised calls never reach (they
// would fail at the write timeout).
func TestConcurrentCallsShareTheWriter(t *testing.T) {
	f := newFixture(t, time.Minute)
	f.kafka.together, f.kafka.all = 50, make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := f.client.CastVote(context.Background(), cast(&votev1.Vote{Name: "a", Album: "b", Year: 2000, Rank: 1})); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(f.kafka.written()); n != 50 {
		t.Fatalf("%d records, want 50", n)
	}
}

type panicky struct {
	votev1.UnimplementedVoteServiceServer
}

func (panicky) CastVote(context.Context, *votev1.CastVoteRequest) (*votev1.CastVoteResponse, error) {
	panic("boom")
}

func TestObserveRecoversPanics(t *testing.T) {
	var logs bytes.Buffer
	intercept := Observe(slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	_, err := intercept(context.Background(), cast(nil), &grpc.UnaryServerInfo{FullMethod: "/x/CastVote"},
		func(ctx context.Context, req any) (any, error) { return panicky{}.CastVote(ctx, nil) })
	if status.Code(err) != codes.Internal || !strings.Contains(logs.String(), "boom") {
		t.Fatalf("err %v, logs %s", err, logs.String())
	}
}

// The standard health service follows the readiness checks, for the server and the service alike.
func TestReportHealthFollowsTheChecks(t *testing.T) {
	hs := health.NewServer()
	checks := readiness.New("kafka")
	ReportHealth(hs, checks)
	want := func(s healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, service := range []string{"", votev1.VoteService_ServiceDesc.ServiceName} {
			resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != s {
				t.Fatalf("%q is %v, want %v", service, resp.GetStatus(), s)
			}
		}
	}
	want(healthpb.HealthCheckResponse_NOT_SERVING)
	checks.Set("kafka", nil)
	want(healthpb.HealthCheckResponse_SERVING)
	checks.Set("kafka", errors.New("connection refused"))
	want(healthpb.HealthCheckResponse_NOT_SERVING)
}
