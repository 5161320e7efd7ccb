package webproxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultMetadataHost is Google's metadata server as every Google Cloud runtime (Cloud Run
// included) reaches it; GCE_METADATA_HOST overrides it, as in Google's own client libraries.
const DefaultMetadataHost = "metadata.google.internal"

// refreshBefore is how long before its expiry a token is replaced (they last an hour).
const refreshBefore = 5 * time.Minute

// IDTokens gets Google identity tokens for one audience from the metadata server, for the
// service account the process runs as, and reuses each until shortly before it expires. A
// private Cloud Run service (the API) accepts a request carrying one minted for its URL from an
// account allowed to invoke it.
type IDTokens struct {
	endpoint string
	client   *http.Client
	now      func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewIDTokens returns tokens for audience from the metadata server at host (host[:port]).
func NewIDTokens(host, audience string) *IDTokens {
	q := url.Values{"audience": {audience}, "format": {"full"}}
	return &IDTokens{
		endpoint: "http://" + host + "/computeMetadata/v1/instance/service-accounts/default/identity?" + q.Encode(),
		client:   &http.Client{Timeout: 5 * time.Second},
		now:      time.Now,
	}
}

// Token returns a token valid for at least a few more minutes.
func (t *IDTokens) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.now().Before(t.expires.Add(-refreshBefore)) {
		return t.token, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.endpoint, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("identity token from the metadata server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("identity token from the metadata server: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("identity token from the metadata server: %s: %.200s", resp.Status, body)
	}
	token := strings.TrimSpace(string(body))
	expires, err := expiry(token)
	if err != nil {
		return "", fmt.Errorf("identity token from the metadata server: %w", err)
	}
	t.token, t.expires = token, expires
	return token, nil
}

// expiry reads a JWT's exp claim. The token is not verified here: it comes from the metadata
// server, and the API's side (Cloud Run) is what checks it.
func expiry(jwt string) (time.Time, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("not a JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("JWT payload: %w", err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, fmt.Errorf("JWT payload has no exp claim (%v)", err)
	}
	return time.Unix(claims.Exp, 0), nil
}
