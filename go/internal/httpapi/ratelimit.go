package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tally-voting/tally/go/internal/envconf"
)

// RateLimit is the per-client token bucket of a public server (docs/api.md, "Hostile clients");
// the Wasm producer reads the same variables and decides the same way. Each replica keeps its own
// buckets: behind a load balancer, a client gets up to the rate once per replica it reaches.
type RateLimit struct {
	// PerSecond is each client's sustained rate; 0 turns the limit off.
	PerSecond float64
	// Burst is how many requests a client may send at once after being quiet.
	Burst int
	// TrustedHops is how many proxies in front of the server append to X-Forwarded-For: the
	// client is the address that many entries from the right (0: the connection's peer).
	TrustedHops int
	// MaxClients bounds the buckets kept; past it, buckets of clients quiet long enough to be
	// full again are dropped, then arbitrary ones.
	MaxClients int
}

// ReadRateLimit reads RATE_LIMIT_PER_SECOND (0: off), RATE_LIMIT_BURST (20),
// TRUSTED_PROXY_HOPS (0) and RATE_LIMIT_MAX_CLIENTS (100000): the defaults and ranges of
// proto/client_address_cases.json, which the Wasm producer's settings follow too (the tests of
// both hold them to it).
func ReadRateLimit(r *envconf.Reader) RateLimit {
	return RateLimit{
		PerSecond:   r.Float("RATE_LIMIT_PER_SECOND", 0, 0, 1e6),
		Burst:       r.Int("RATE_LIMIT_BURST", 20, 1, 1e6),
		TrustedHops: r.Int("TRUSTED_PROXY_HOPS", 0, 0, 16),
		MaxClients:  r.Int("RATE_LIMIT_MAX_CLIENTS", 100_000, 1, 1e7),
	}
}

// Limit wraps next so requests to the given paths take a token from their client's bucket first;
// a client out of tokens gets 429 with Retry-After and the usual JSON error. Off (next itself)
// when PerSecond is 0.
func (rl RateLimit) Limit(next http.Handler, now func() time.Time, paths ...string) http.Handler {
	if rl.PerSecond <= 0 {
		return next
	}
	buckets := NewBuckets(rl.PerSecond, rl.Burst, rl.MaxClients)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !containsPath(paths, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		wait, ok := buckets.Take(ClientAddr(r, rl.TrustedHops), now())
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			RefuseUnread(w, http.StatusTooManyRequests, "too many requests from this client; retry after "+strconv.Itoa(wait)+" s", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func containsPath(paths []string, path string) bool {
	for _, p := range paths {
		if p == path {
			return true
		}
	}
	return false
}

// ClientAddr is the client's address by the rule of proto/client_address_cases.json, which the
// Wasm producer applies too: with trustedHops 0 the connection's peer; else the entry trustedHops
// from the right of the X-Forwarded-For list (every header line, comma-separated, each entry
// trimmed of spaces and tabs, empty ones ignored) followed by the peer, or its leftmost entry when
// the list is shorter. Entries left of the trusted ones are the client's to write, so they never
// count; an entry is otherwise kept byte for byte, so what a proxy wrote is never reinterpreted.
func ClientAddr(r *http.Request, trustedHops int) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if trustedHops == 0 {
		return peer
	}
	var chain []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, e := range strings.Split(v, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				chain = append(chain, e)
			}
		}
	}
	chain = append(chain, peer)
	return chain[max(len(chain)-1-trustedHops, 0)]
}

// Buckets are token buckets by client, in bounded memory.
type Buckets struct {
	mu        sync.Mutex
	rate      float64
	burst     float64
	max       int
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewBuckets holds buckets of burst tokens refilled at rate per second, for at most maxClients.
func NewBuckets(rate float64, burst, maxClients int) *Buckets {
	return &Buckets{rate: rate, burst: float64(burst), max: maxClients, buckets: make(map[string]*bucket)}
}

// Take takes a token of client's bucket at now. Without one, it says how many whole seconds
// until there is one.
func (b *Buckets) Take(client string, now time.Time) (retryAfter int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, found := b.buckets[client]
	if !found {
		b.makeRoom(now)
		bk = &bucket{tokens: b.burst, at: now}
		b.buckets[client] = bk
	}
	if elapsed := now.Sub(bk.at).Seconds(); elapsed > 0 {
		bk.tokens = math.Min(b.burst, bk.tokens+elapsed*b.rate)
		bk.at = now
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return 0, true
	}
	return max(1, int(math.Ceil((1-bk.tokens)/b.rate))), false
}

// Len is how many buckets are kept.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buckets)
}

// makeRoom keeps the map under its bound: a bucket full again is no different from none, so
// those go first (at most once a second, or when full); then, if still full, any one goes.
func (b *Buckets) makeRoom(now time.Time) {
	full := len(b.buckets) >= b.max
	if !full && now.Sub(b.lastSweep) < time.Second {
		return
	}
	b.lastSweep = now
	refill := time.Duration(b.burst / b.rate * float64(time.Second))
	for k, bk := range b.buckets {
		if now.Sub(bk.at) >= refill {
			delete(b.buckets, k)
		}
	}
	for k := range b.buckets {
		if len(b.buckets) < b.max {
			break
		}
		delete(b.buckets, k)
	}
}
