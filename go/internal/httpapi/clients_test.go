package httpapi

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Beyond the limit a new connection is answered 503 with Retry-After at once, before it sends
// anything; once a connection closes, its slot serves again.
func TestListenerAnswersBeyondTheLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Timeouts far beyond the test's run, so no held connection is closed by the clock.
	limits := ClientLimits{HeaderTimeout: time.Minute, BodyTimeout: time.Minute, IdleTimeout: time.Minute, MaxConnections: 2}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})}
	limits.Apply(srv)
	go srv.Serve(limits.Listener(ln, slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { srv.Close() })

	// Two connections the server has accepted: each has had an answer, and stays open.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a connection within the limit: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer beyond the limit: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("beyond the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}

	// The server frees the slot once it reads the close, a moment after it: until then a new
	// connection may still be turned away.
	held[0].Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode == 200 {
			break
		}
		if r.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("after a slot freed: %d", r.StatusCode)
		}
	}
	held[1].Close()
}

func TestBucketsRefillAndStayBounded(t *testing.T) {
	b := NewBuckets(2, 3, 100)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if _, ok := b.Take("a", t0); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	wait, ok := b.Take("a", t0)
	if ok || wait != 1 {
		t.Fatalf("over the burst: ok=%v wait=%d, want refused with 1 s", ok, wait)
	}
	if _, ok := b.Take("b", t0); !ok {
		t.Fatal("another client was refused")
	}
	if _, ok := b.Take("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token did not come back after 1/rate")
	}
	for i := range 1000 {
		b.Take("c"+strings.Repeat("x", i%7)+string(rune('A'+i%50))+string(rune('a'+i/50)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := b.Len(); n > 100 {
		t.Fatalf("%d buckets kept, bound is 100", n)
	}
	// Quiet long enough to be full again: swept.
	b.Take("late", t0.Add(time.Hour))
	if n := b.Len(); n != 1 {
		t.Fatalf("%d buckets after an hour of quiet, want only the new one", n)
	}
}

func TestRateLimitAnswers429OnItsPathsOnly(t *testing.T) {
	now := time.Unix(1000, 0)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	h := RateLimit{PerSecond: 1, Burst: 1, MaxClients: 10}.Limit(ok, func() time.Time { return now }, "/votes")
	do := func(path, addr string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", path, nil)
		r.RemoteAddr = addr + ":1"
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := do("/votes", "1.1.1.1"); rec.Code != 202 {
		t.Fatalf("first: %d", rec.Code)
	}
	rec := do("/votes", "1.1.1.1")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `"error":"too many requests`) {
		t.Fatalf("second: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := do("/healthz", "1.1.1.1"); rec.Code != 202 {
		t.Fatalf("other path limited: %d", rec.Code)
	}
	if rec := do("/votes", "2.2.2.2"); rec.Code != 202 {
		t.Fatalf("other client limited: %d", rec.Code)
	}
	// Without a rate the limit is off: one client's requests all pass.
	h = RateLimit{}.Limit(ok, func() time.Time { return now }, "/votes")
	for i := range 5 {
		if rec := do("/votes", "1.1.1.1"); rec.Code != 202 {
			t.Fatalf("request %d with the limit off: %d", i, rec.Code)
		}
	}
}
