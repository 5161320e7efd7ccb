package webproxy

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// jwt makes an unsigned token with exp: enough for the proxy, which only reads exp.
func jwt(exp time.Time, n int64) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d,"n":%d}`, exp.Unix(), n))) + ".c2ln"
}

// fakeMetadata is a unit-test stand-in for Google's metadata server's identity endpoint: it
// checks what a real one requires and counts the tokens it mints.
type fakeMetadata struct {
	t        *testing.T
	audience string
	minted   atomic.Int64
	last     atomic.Value // the last token minted
	lifetime time.Duration
	fail     atomic.Bool
}

func (m *fakeMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/identity" || r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if got := r.URL.Query().Get("audience"); got != m.audience {
		m.t.Errorf("audience %q, want the API's URL %q", got, m.audience)
	}
	if m.fail.Load() {
		http.Error(w, "no service account", http.StatusNotFound)
		return
	}
	token := jwt(time.Now().Add(m.lifetime), m.minted.Add(1))
	m.last.Store(token)
	fmt.Fprint(w, token)
}

func TestProxyCallsTheAPIWithAnIdentityToken(t *testing.T) {
	var seen atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Bearer ") {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		seen.Store(auth)
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer api.Close()
	meta := &fakeMetadata{t: t, audience: api.URL, lifetime: time.Hour}
	metaSrv := httptest.NewServer(meta)
	defer metaSrv.Close()

	u, _ := url.Parse(api.URL)
	p := New(Options{Root: site(t), API: u, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tokens: NewIDTokens(strings.TrimPrefix(metaSrv.URL, "http://"), api.URL)})
	srv := httptest.NewServer(p)
	defer srv.Close()

	// The client's own Authorization never reaches the API: the proxy's token replaces it.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/results", nil)
	req.Header.Set("Authorization", "Bearer from-the-browser")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied call: %s", resp.Status)
	}
	minted, _ := meta.last.Load().(string)
	if got, _ := seen.Load().(string); minted == "" || got != "Bearer "+minted {
		t.Errorf("the API got Authorization %q, want the metadata server's token %q", got, minted)
	}
	// The readiness check, which calls the API's /healthz, carries it too; one token serves both.
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s %s", resp.Status, body)
	}
	if n := meta.minted.Load(); n != 1 {
		t.Errorf("%d tokens minted for two calls within the token's life, want 1", n)
	}

	// Without a token the call does not go out unauthenticated: 502, retry later.
	meta.fail.Store(true)
	tokens := NewIDTokens(strings.TrimPrefix(metaSrv.URL, "http://"), api.URL)
	p2 := New(Options{Root: site(t), API: u, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tokens: tokens})
	srv2 := httptest.NewServer(p2)
	defer srv2.Close()
	if resp, body := get(t, srv2.URL+"/api/results"); resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Retry-After") == "" {
		t.Errorf("metadata server failing: %s %s, want 502 with Retry-After", resp.Status, body)
	}
	if resp, _ := get(t, srv2.URL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("metadata server failing: /readyz %s, want 503", resp.Status)
	}
}

func TestIDTokensAreRenewedBeforeTheyExpire(t *testing.T) {
	meta := &fakeMetadata{t: t, audience: "https://api.example", lifetime: time.Hour}
	metaSrv := httptest.NewServer(meta)
	defer metaSrv.Close()
	tokens := NewIDTokens(strings.TrimPrefix(metaSrv.URL, "http://"), "https://api.example")
	now := time.Now()
	tokens.now = func() time.Time { return now }
	first, err := tokens.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Minute)
	if again, _ := tokens.Token(t.Context()); again != first {
		t.Error("a token with 10 minutes left was replaced")
	}
	now = now.Add(6 * time.Minute)
	if renewed, _ := tokens.Token(t.Context()); renewed == first || meta.minted.Load() != 2 {
		t.Errorf("a token with 4 minutes left was kept (%d minted)", meta.minted.Load())
	}

	for _, bad := range []string{"not-a-jwt", "a.%%%.c", "a." + base64.RawURLEncoding.EncodeToString([]byte(`{}`)) + ".c"} {
		if _, err := expiry(bad); err == nil {
			t.Errorf("expiry(%q) accepted", bad)
		}
	}
}
