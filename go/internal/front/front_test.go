package front

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tally-voting/tally/go/internal/badrequest"
	"github.com/tally-voting/tally/go/internal/httpapi"
	"github.com/tally-voting/tally/go/internal/vote"
	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// fakeProducer stands in for grpc-producer in these unit tests only: a real gRPC server in the
// test process (over bufconn), recording what it is sent and answering what the test says.
type fakeProducer struct {
	votev1.UnimplementedVoteServiceServer
	mu     sync.Mutex
	got    []*votev1.Vote
	answer func(*votev1.Vote) (*votev1.CastVoteResponse, error)
}

func (f *fakeProducer) CastVote(_ context.Context, req *votev1.CastVoteRequest) (*votev1.CastVoteResponse, error) {
	f.mu.Lock()
	f.got = append(f.got, req.GetVote())
	answer := f.answer
	f.mu.Unlock()
	if answer != nil {
		return answer(req.GetVote())
	}
	id := req.GetVote().GetVoteId()
	if id == "" {
		id = "0190f1e2-7c3a-7b2e-9d4f-1a2b3c4d5e6f"
	}
	return &votev1.CastVoteResponse{VoteId: id, AcceptedAtUnixMs: 1}, nil
}

func (f *fakeProducer) calls() []*votev1.Vote {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*votev1.Vote(nil), f.got...)
}

func (f *fakeProducer) setAnswer(a func(*votev1.Vote) (*votev1.CastVoteResponse, error)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

type fixture struct {
	producer *fakeProducer
	health   *health.Server
	grpc     *grpc.Server
	handler  http.Handler
	logs     *bytes.Buffer
	clock    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{producer: &fakeProducer{}, health: health.NewServer(), logs: &bytes.Buffer{},
		clock: time.Date(loadCases(t).ClockYear, time.June, 1, 0, 0, 0, 0, time.UTC)}
	lis := bufconn.Listen(1 << 20)
	f.health.SetServingStatus(votev1.VoteService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	f.grpc = grpc.NewServer()
	votev1.RegisterVoteServiceServer(f.grpc, f.producer)
	healthpb.RegisterHealthServer(f.grpc, f.health)
	go f.grpc.Serve(lis)
	t.Cleanup(f.grpc.Stop)
	conn, err := grpc.NewClient("passthrough:///producer",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.handler = New(Options{
		Votes:    votev1.NewVoteServiceClient(conn),
		Health:   healthpb.NewHealthClient(conn),
		Timeout:  2 * time.Second,
		Now:      func() time.Time { return f.clock },
		Logger:   slog.New(slog.NewJSONHandler(f.logs, nil)),
		Registry: prometheus.NewRegistry(),
	})
	return f
}

type response struct {
	code   int
	header http.Header
	body   []byte
	err    httpapi.ErrorBody
	id     string
}

func (f *fixture) do(t *testing.T, method, path, contentType string, body []byte, headers ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	r := response{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if ct := rec.Header().Get("Content-Type"); path != PathMetrics && method != http.MethodHead && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var parsed struct {
		httpapi.ErrorBody
		ID string `json:"id"`
	}
	if rec.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(r.body, &parsed); err != nil {
			t.Errorf("%s %s: body %q is not JSON: %v", method, path, r.body, err)
		}
	}
	r.err, r.id = parsed.ErrorBody, parsed.ID
	return r
}

func (f *fixture) post(t *testing.T, body string, headers ...string) response {
	t.Helper()
	return f.do(t, http.MethodPost, PathVotes, "application/json", []byte(body), headers...)
}

type casesFile struct {
	ClockYear int `json:"clock_year"`
	Cases     []struct {
		Description string    `json:"description"`
		Body        string    `json:"body"`
		BodyBase64  string    `json:"body_base64"`
		Valid       bool      `json:"valid"`
		Field       string    `json:"field"`
		Vote        vote.Vote `json:"vote"`
		Ballot      *bool     `json:"ballot"`
	} `json:"cases"`
}

func loadCases(t *testing.T) casesFile {
	t.Helper()
	data, err := os.ReadFile("../../../proto/vote_cases.json") // in the test's data under Bazel
	if err != nil {
		t.Fatalf("read shared cases: %v", err)
	}
	var cf casesFile
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	return cf
}

// Every case of the shared table through the HTTP layer: invalid ones get 400 naming the field
// and never reach the producer; valid ones reach it exactly as the table says they parse. The
// front checks the format rules only; the ballot is the gRPC producer's (voterpc's test runs
// those cases, go/test/httpcontract runs them on the whole route), so ballot cases that fail
// only on the ballot are not the front's to refuse and are skipped here.
func TestSharedCasesThroughHTTP(t *testing.T) {
	f := newFixture(t)
	cases := loadCases(t)
	now := time.Date(cases.ClockYear, time.June, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range cases.Cases {
		t.Run(c.Description, func(t *testing.T) {
			body := []byte(c.Body)
			if c.BodyBase64 != "" {
				var err error
				if body, err = base64.StdEncoding.DecodeString(c.BodyBase64); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := vote.Parse(body, now); !c.Valid && err == nil {
				t.Skip("refused by the ballot, which the gRPC producer checks")
			}
			before := len(f.producer.calls())
			r := f.do(t, http.MethodPost, PathVotes, "application/json", body)
			calls := f.producer.calls()[before:]
			if !c.Valid {
				if r.code != http.StatusBadRequest || r.err.Field != c.Field {
					t.Fatalf("got %d %+v, want 400 naming %q", r.code, r.err, c.Field)
				}
				if !strings.HasPrefix(r.err.Error, c.Field+":") {
					t.Errorf("error %q does not start with the field", r.err.Error)
				}
				if len(calls) != 0 {
					t.Fatalf("an invalid vote reached the producer: %v", calls)
				}
				return
			}
			if r.code != http.StatusAccepted || r.id == "" {
				t.Fatalf("got %d %s, want 202 with an id", r.code, r.body)
			}
			if len(calls) != 1 {
				t.Fatalf("producer got %d calls, want 1", len(calls))
			}
			got := calls[0]
			if got.GetName() != c.Vote.Name || got.GetAlbum() != c.Vote.Album || got.GetYear() != c.Vote.Year || got.GetRank() != c.Vote.Rank {
				t.Fatalf("producer got %v, want %+v", got, c.Vote)
			}
		})
	}
}

func TestLimitsAndMethods(t *testing.T) {
	f := newFixture(t)
	valid := `{"name":"Alux Nahual","album":"Alux Nahual","year":1983,"rank":1}`
	padded := func(n int) string { // a valid vote padded with spaces to exactly n bytes
		return valid[:len(valid)-1] + strings.Repeat(" ", n-len(valid)) + "}"
	}
	for _, tc := range []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		code        int
		allow       string
		field       string
	}{
		{"exactly 4 KiB", "POST", PathVotes, "application/json", padded(MaxBodyBytes), 202, "", ""},
		{"one byte over 4 KiB", "POST", PathVotes, "application/json", padded(MaxBodyBytes + 1), 413, "", "body"},
		{"far over 4 KiB", "POST", PathVotes, "application/json", padded(1 << 20), 413, "", "body"},
		{"charset utf-8", "POST", PathVotes, "application/json; charset=UTF-8", valid, 202, "", ""},
		{"text/plain", "POST", PathVotes, "text/plain", valid, 415, "", "Content-Type"},
		{"no content type", "POST", PathVotes, "", valid, 415, "", "Content-Type"},
		{"form", "POST", PathVotes, "application/x-www-form-urlencoded", valid, 415, "", "Content-Type"},
		{"other charset", "POST", PathVotes, "application/json; charset=latin1", valid, 415, "", "Content-Type"},
		{"garbled content type", "POST", PathVotes, "application/json; ;;", valid, 415, "", "Content-Type"},
		{"GET votes", "GET", PathVotes, "", "", 405, "POST", ""},
		{"PUT votes", "PUT", PathVotes, "application/json", valid, 405, "POST", ""},
		{"DELETE votes", "DELETE", PathVotes, "", "", 405, "POST", ""},
		{"POST healthz", "POST", PathHealthz, "application/json", "{}", 405, "GET, HEAD", ""},
		{"POST readyz", "POST", PathReadyz, "application/json", "{}", 405, "GET, HEAD", ""},
		{"POST metrics", "POST", PathMetrics, "application/json", "{}", 405, "GET, HEAD", ""},
		{"root", "GET", "/", "", "", 404, "", ""},
		{"unknown", "POST", "/vote", "application/json", valid, 404, "", ""},
		{"trailing slash", "POST", "/votes/", "application/json", valid, 404, "", ""},
		{"double slash", "POST", "//votes", "application/json", valid, 404, "", ""},
		{"dot segments", "POST", "/x/../votes", "application/json", valid, 404, "", ""},
		{"health", "GET", PathHealthz, "", "", 200, "", ""},
		{"health HEAD", "HEAD", PathHealthz, "", "", 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.producer.calls())
			r := f.do(t, tc.method, tc.path, tc.contentType, []byte(tc.body))
			if r.code != tc.code {
				t.Fatalf("status %d (%s), want %d", r.code, r.body, tc.code)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if r.err.Field != tc.field {
				t.Errorf("field = %q, want %q", r.err.Field, tc.field)
			}
			if tc.code >= 400 && tc.method != "HEAD" && r.err.Error == "" {
				t.Errorf("error body without a message: %s", r.body)
			}
			if n := len(f.producer.calls()) - before; (tc.code == 202) != (n == 1) {
				t.Errorf("producer got %d calls for status %d", n, tc.code)
			}
		})
	}
}

// A body larger than the limit with no Content-Length (chunked) is cut off at the limit.
func TestChunkedBodyOverLimit(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest("POST", PathVotes, io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("a", 10000))))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", rec.Code)
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	valid := `{"name":"Alux Nahual","album":"Alux Nahual","year":1983,"rank":1}`
	for _, key := range []string{"k", "client-42/retry 1", strings.Repeat("x", vote.IDMaxChars)} {
		r := f.post(t, valid, IdempotencyKeyHeader, key)
		calls := f.producer.calls()
		if r.code != http.StatusAccepted || r.id != key || calls[len(calls)-1].GetVoteId() != key {
			t.Errorf("key %q: %d %s, producer got id %q", key, r.code, r.body, calls[len(calls)-1].GetVoteId())
		}
	}
	r := f.post(t, valid)
	if r.code != http.StatusAccepted || f.producer.calls()[len(f.producer.calls())-1].GetVoteId() != "" {
		t.Errorf("without a key the front must leave the id to the producer: %d %s", r.code, r.body)
	}
	before := len(f.producer.calls())
	for name, headers := range map[string][]string{
		"empty":     {IdempotencyKeyHeader, ""},
		"too long":  {IdempotencyKeyHeader, strings.Repeat("x", vote.IDMaxChars+1)},
		"non-ASCII": {IdempotencyKeyHeader, "voto-ñ"},
		"tab":       {IdempotencyKeyHeader, "a\tb"},
		"twice":     {IdempotencyKeyHeader, "a", IdempotencyKeyHeader, "b"},
	} {
		r := f.post(t, valid, headers...)
		if r.code != http.StatusBadRequest || r.err.Field != IdempotencyKeyHeader {
			t.Errorf("%s: %d %+v, want 400 naming %s", name, r.code, r.err, IdempotencyKeyHeader)
		}
	}
	if n := len(f.producer.calls()) - before; n != 0 {
		t.Errorf("%d votes with a bad key reached the producer", n)
	}
}

// The producer's answers map onto the contract's statuses.
func TestProducerErrors(t *testing.T) {
	f := newFixture(t)
	valid := `{"name":"Alux Nahual","album":"Alux Nahual","year":1983,"rank":1}`
	for _, tc := range []struct {
		name  string
		err   error
		code  int
		field string
	}{
		{"invalid year", badrequest.InvalidArgument("vote.year", "must be from 1900 to 2027"), 400, "year"},
		{"invalid id", badrequest.InvalidArgument(badrequest.FieldVoteID, "must be printable ASCII"), 400, IdempotencyKeyHeader},
		{"invalid without details", status.Error(codes.InvalidArgument, "bad"), 400, "body"},
		{"kafka down", status.Error(codes.Unavailable, "kafka did not acknowledge"), 503, ""},
		{"too slow", status.Error(codes.DeadlineExceeded, "deadline"), 503, ""},
		{"bug", status.Error(codes.Internal, "oops"), 500, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.producer.setAnswer(func(*votev1.Vote) (*votev1.CastVoteResponse, error) { return nil, tc.err })
			r := f.post(t, valid)
			if r.code != tc.code || r.err.Field != tc.field {
				t.Fatalf("%d %+v, want %d naming %q", r.code, r.err, tc.code, tc.field)
			}
			if ra := r.header.Get("Retry-After"); (tc.code == 503) != (ra == RetryAfterSeconds) {
				t.Errorf("Retry-After = %q for %d", ra, tc.code)
			}
		})
	}
}

// With the producer gone, votes get 503 with Retry-After, readiness fails, health stays up.
func TestProducerDown(t *testing.T) {
	f := newFixture(t)
	if r := f.do(t, "GET", PathReadyz, "", nil); r.code != http.StatusOK {
		t.Fatalf("ready with a SERVING producer: %d %s", r.code, r.body)
	}
	f.health.SetServingStatus(votev1.VoteService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	if r := f.do(t, "GET", PathReadyz, "", nil); r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("ready with a NOT_SERVING producer: %d %s", r.code, r.body)
	}
	f.grpc.Stop()
	r := f.post(t, `{"name":"a","album":"b","year":2000,"rank":1}`)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != RetryAfterSeconds {
		t.Fatalf("vote with the producer down: %d %s %v", r.code, r.body, r.header)
	}
	if r := f.do(t, "GET", PathReadyz, "", nil); r.code != http.StatusServiceUnavailable {
		t.Fatalf("ready with the producer down: %d", r.code)
	}
	if r := f.do(t, "GET", PathHealthz, "", nil); r.code != http.StatusOK {
		t.Fatalf("healthz with the producer down: %d", r.code)
	}
	metrics := string(f.do(t, "GET", PathMetrics, "", nil).body)
	for _, want := range []string{
		"tally_kafka_errors_total 1",
		`tally_http_requests_total{code="503",method="POST",path="/votes"} 1`,
		`tally_http_request_duration_seconds_bucket{path="/votes"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// One log line per request, with the vote id or the failing field.
func TestOneLogLinePerRequest(t *testing.T) {
	f := newFixture(t)
	f.post(t, `{"name":"a","album":"b","year":2000,"rank":1}`, IdempotencyKeyHeader, "log-me")
	f.post(t, `{"name":"a","album":"b","year":1,"rank":1}`)
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 2 requests:\n%s", len(lines), f.logs)
	}
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["status"] != 202.0 || first["vote_id"] != "log-me" || first["path"] != PathVotes {
		t.Errorf("first line: %s", lines[0])
	}
	if second["status"] != 400.0 || second["field"] != "year" {
		t.Errorf("second line: %s", lines[1])
	}
}

// No input crashes the handler: random bytes, random JSON-ish bodies, random headers.
func TestArbitraryInputNeverPanics(t *testing.T) {
	f := newFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{`{`, `}`, `"name"`, `"album"`, `"year"`, `"rank"`, `:`, `,`, `null`, `"`, `\u0000`, `1e400`,
		`-`, `99999999999999999999`, `[`, `]`, `"\ud800"`, "\xff", ` `, `true`}
	for i := range 2000 {
		var b strings.Builder
		if i%2 == 0 {
			for range rng.IntN(40) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
		} else {
			for range rng.IntN(200) {
				b.WriteByte(byte(rng.IntN(256)))
			}
		}
		r := f.post(t, b.String(), IdempotencyKeyHeader, string(rune('!'+rng.IntN(90))))
		if r.code != http.StatusBadRequest && r.code != http.StatusAccepted {
			t.Fatalf("body %q: status %d", b.String(), r.code)
		}
	}
}
