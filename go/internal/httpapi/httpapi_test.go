package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-voting/tally/go/internal/readiness"
	"github.com/tally-voting/tally/go/internal/reqlog"
)

func TestWriteErrorShape(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, http.StatusBadRequest, "year: must be from 1900 to 2027", "year")
	if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["field"] != "year" || body["error"] == "" {
		t.Fatalf("body %s (%v)", rec.Body, err)
	}
	rec = httptest.NewRecorder()
	WriteError(rec, http.StatusNotFound, "no such path", "")
	if strings.Contains(rec.Body.String(), "field") {
		t.Fatalf("empty field written: %s", rec.Body)
	}
}

func TestAllow(t *testing.T) {
	rec := httptest.NewRecorder()
	if Allow(rec, httptest.NewRequest("PATCH", "/x", nil), "GET", "HEAD") {
		t.Fatal("PATCH allowed")
	}
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("%d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
	if !Allow(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil), "GET", "HEAD") {
		t.Fatal("GET refused")
	}
}

func TestReadyz(t *testing.T) {
	var down error = errors.New("kafka at 10.0.0.7:9092 unreachable")
	h := Readyz(func(context.Context) error { return down })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || rec.Body.String() != `{"error":"not ready"}`+"\n" {
		t.Fatalf("down: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	down = nil
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("up: %d", rec.Code)
	}
	// Readiness checks' names are said; their reasons are not.
	checks := readiness.New("kafka", "mongo writes")
	checks.Set("kafka", nil)
	down = fmt.Errorf("check: %w", checks.Err())
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if want := `{"error":"not ready: mongo writes","checks":["mongo writes"]}` + "\n"; rec.Code != 503 || rec.Body.String() != want {
		t.Fatalf("a failing check: %d %s, want 503 %s", rec.Code, rec.Body, want)
	}
}

func TestObserveLogsOneLine(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := Observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqlog.Add(r.Context(), slog.String("vote_id", "v1"))
		WriteJSON(w, http.StatusAccepted, map[string]string{"id": "v1"})
	}), slog.New(slog.NewJSONHandler(&logs, nil)), NewMetrics(reg), "/votes")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/votes", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/secret-path-123", nil))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), logs.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["status"] != 202.0 || line["vote_id"] != "v1" || line["method"] != "POST" || line["took_ms"] == nil {
		t.Fatalf("line %s", lines[0])
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range families {
		if f.GetName() != "tally_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" {
					paths = append(paths, l.GetValue())
				}
			}
		}
	}
	if strings.Join(paths, ",") != "/votes,other" && strings.Join(paths, ",") != "other,/votes" {
		t.Fatalf("path labels %v, want /votes and other", paths)
	}
}

// Successful probes log at debug level, failing ones as usual.
func TestObserveQuietProbes(t *testing.T) {
	var logs bytes.Buffer
	ready := true
	h := Observe(Readyz(func(context.Context) error {
		if ready {
			return nil
		}
		return errors.New("kafka unreachable")
	}), slog.New(slog.NewJSONHandler(&logs, nil)), NewMetrics(prometheus.NewRegistry()), "/readyz")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/readyz", nil))
	if logs.Len() != 0 {
		t.Fatalf("a successful probe logged at info: %s", logs.String())
	}
	ready = false
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/readyz", nil))
	if !strings.Contains(logs.String(), `"status":503`) {
		t.Fatalf("a failing probe was not logged: %q", logs.String())
	}
}

// A request in flight when shutdown starts completes; the listener closes at once.
func TestServeDrainsInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, 5*time.Second) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request got %q", body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v after a clean drain", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestServeCutsAfterTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, 100*time.Millisecond) }()
	go http.Get("http://" + ln.Addr().String())
	<-started
	cancel()
	if err := <-served; err == nil {
		t.Fatal("Serve = nil though a request was cut")
	}
}

func TestWithPprof(t *testing.T) {
	h := WithPprof(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for path, want := range map[string]int{"/debug/pprof/": http.StatusOK, "/debug/pprof/cmdline": http.StatusOK, "/votes": http.StatusTeapot} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}
