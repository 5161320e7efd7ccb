package webproxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// site writes a small dist directory: index.html and one hashed asset.
func site(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"index.html":             "<!doctype html><title>Tally</title>",
		"assets/index-abc123.js": "console.log('tally')",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newProxy(t *testing.T, root string, api *httptest.Server) (*Proxy, *httptest.Server) {
	t.Helper()
	u, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Root: root, API: u, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestStaticFiles(t *testing.T) {
	api := httptest.NewServer(http.NotFoundHandler())
	defer api.Close()
	_, srv := newProxy(t, site(t), api)

	tests := []struct {
		path, status, cache, body string
	}{
		{"/", "200 OK", "no-cache", "<!doctype html><title>Tally</title>"},
		{"/assets/index-abc123.js", "200 OK", "public, max-age=31536000, immutable", "console.log('tally')"},
		{"/assets/", "404 Not Found", "", `{"error":"no such path: /assets/"}` + "\n"},
		{"/missing.js", "404 Not Found", "", `{"error":"no such path: /missing.js"}` + "\n"},
		{"/../../etc/passwd", "404 Not Found", "", ""},
	}
	for _, tt := range tests {
		resp, body := get(t, srv.URL+tt.path)
		if resp.Status != tt.status {
			t.Errorf("GET %s: status %s, want %s", tt.path, resp.Status, tt.status)
		}
		if got := resp.Header.Get("Cache-Control"); got != tt.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", tt.path, got, tt.cache)
		}
		if tt.body != "" && body != tt.body {
			t.Errorf("GET %s: body %q, want %q", tt.path, body, tt.body)
		}
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", resp.StatusCode)
	}
}

func TestAPIRequestsReachTheAPIUnchanged(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.Path, "query": r.URL.RawQuery, "forwarded_for": r.Header.Get("X-Forwarded-For"),
		})
	}))
	defer api.Close()
	_, srv := newProxy(t, site(t), api)

	resp, body := get(t, srv.URL+"/api/logs?limit=5")
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("status %d, want the API's 418", resp.StatusCode)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got["path"] != "/api/logs" || got["query"] != "limit=5" || got["forwarded_for"] != "127.0.0.1" {
		t.Errorf("the API saw %v", got)
	}
}

// An event the API flushes reaches the browser while the API is still writing the stream.
func TestEventStreamIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: results\ndata: {\"total\":1}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer api.Close()
	defer close(release)
	_, srv := newProxy(t, site(t), api)

	resp, err := http.Get(srv.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		if line != "event: results" {
			t.Errorf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open: buffered")
	}
}

func TestCloseStreamsEndsOpenStreams(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer api.Close()
	p, srv := newProxy(t, site(t), api)

	resp, err := http.Get(srv.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	p.CloseStreams()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stayed open after CloseStreams")
	}
}

func TestAPIDown(t *testing.T) {
	api := httptest.NewServer(http.NotFoundHandler())
	api.Close() // nothing listens there any more
	_, srv := newProxy(t, site(t), api)

	resp, body := get(t, srv.URL+"/api/results")
	if resp.StatusCode != http.StatusBadGateway || body != `{"error":"api unavailable"}`+"\n" {
		t.Errorf("got %s %q, want 502 with a JSON error", resp.Status, body)
	}
	if resp, _ := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the API down: %s, want 503", resp.Status)
	}
	if resp, _ := get(t, srv.URL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s, want 200 (the proxy itself is alive)", resp.Status)
	}
}

func TestReady(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	root := site(t)
	_, srv := newProxy(t, root, api)
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s %s", resp.Status, body)
	}
	if err := os.Remove(filepath.Join(root, "index.html")); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, srv.URL+"/readyz")
	// The reason goes to the request log, not the body (httpapi.Readyz).
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz without index.html: %s %s", resp.Status, body)
	}
}
