package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/vote"
)

// producer is a fake producer API: 202 for a valid vote after delay, status otherwise.
func producer(t *testing.T, delay time.Duration, status int) (*httptest.Server, *atomic.Int64) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/votes" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request shape", http.StatusNotFound)
			return
		}
		if _, err := vote.Parse(body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.Add(1)
		time.Sleep(delay)
		w.WriteHeader(status)
		io.WriteString(w, `{"id":"x"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestOpenLoopSendsTheSchedule(t *testing.T) {
	srv, got := producer(t, 0, http.StatusAccepted)
	target := NewHTTP(srv.URL, 8)
	defer target.Close()
	r := RunOpen(context.Background(), target, Open{Rate: 400, Duration: 500 * time.Millisecond, Workers: 8})
	if r.Scheduled != 200 || r.OK != 200 || len(r.Errors) != 0 || r.Unsent != 0 || got.Load() != 200 {
		t.Fatalf("result %+v, server saw %d", r, got.Load())
	}
	if r.Latency.Count != 200 || r.Throughput <= 0 || r.Mode != "open" || r.Offered != 400 {
		t.Errorf("result %+v", r)
	}
}

// A server slower than the offered rate builds a queue, and the latencies include it: the last
// vote was due at 0.25 s but is answered after all 50 × 20 ms, so it waited about 0.75 s.
func TestOpenLoopChargesTheQueue(t *testing.T) {
	srv, _ := producer(t, 20*time.Millisecond, http.StatusAccepted)
	target := NewHTTP(srv.URL, 1)
	defer target.Close()
	r := RunOpen(context.Background(), target, Open{Rate: 200, Duration: 250 * time.Millisecond, Workers: 1, Grace: 5 * time.Second})
	if r.OK != 50 {
		t.Fatalf("result %+v", r)
	}
	if r.Latency.Max < 500 {
		t.Errorf("max latency %v ms: the queue behind a slow server was not counted", r.Latency.Max)
	}
}

func TestClosedLoopAndErrors(t *testing.T) {
	srv, got := producer(t, 0, http.StatusAccepted)
	target := NewHTTP(srv.URL, 4)
	defer target.Close()
	r := RunClosed(context.Background(), target, Closed{Conns: 4, Duration: 200 * time.Millisecond})
	if r.OK == 0 || r.OK != got.Load() || len(r.Errors) != 0 || r.Mode != "closed" || r.Conns != 4 {
		t.Fatalf("result %+v, server saw %d", r, got.Load())
	}

	down, _ := producer(t, 0, http.StatusServiceUnavailable)
	bad := NewHTTP(down.URL, 2)
	defer bad.Close()
	r = RunOpen(context.Background(), bad, Open{Rate: 100, Duration: 100 * time.Millisecond, Workers: 2})
	if r.OK != 0 || r.Errors["HTTP 503"] != 10 || r.Latency.Count != 0 {
		t.Fatalf("result %+v", r)
	}
}
