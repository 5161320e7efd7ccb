// Package webproxy is the webapp's front door: it serves the built Vue app (the Vite dist
// directory) and passes /api/ to the Node API, streaming responses as they come so the API's
// Server-Sent Events reach the browser at once. One origin for both means the page needs no CORS
// and works the same behind //:up, in Kubernetes and on Cloud Run.
package webproxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/tally-voting/tally/go/internal/httpapi"
)

// APIPrefix is the path prefix passed to the API unchanged; everything else is a static file.
const APIPrefix = "/api/"

// Options configure a Proxy.
type Options struct {
	// Root is the Vite dist directory: index.html plus assets/ with content-hashed names.
	Root string
	// API is the Node API's base URL (scheme and host; a path is not used).
	API *url.URL
	// Logger gets one line per failed upstream call.
	Logger *slog.Logger
	// Tokens, when set, authenticate every call to the API (proxied requests and the readiness
	// check) with a bearer token from it: a private Cloud Run API wants a Google identity token
	// for its URL (IDTokens). Nil sends none.
	Tokens TokenSource
}

// TokenSource gives the bearer token of the next call to the API.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Proxy is an http.Handler for the whole webapp origin.
type Proxy struct {
	root   fs.FS
	rootOS string
	api    *url.URL
	log    *slog.Logger
	tokens TokenSource
	proxy  *httputil.ReverseProxy
	mux    *http.ServeMux
	// streams is cancelled by CloseStreams; every proxied request ends with it.
	streams context.Context
	closeFn context.CancelFunc
}

// New returns a Proxy over opts.
func New(opts Options) *Proxy {
	streams, closeFn := context.WithCancel(context.Background())
	p := &Proxy{
		root:    os.DirFS(opts.Root),
		rootOS:  opts.Root,
		api:     opts.API,
		log:     opts.Logger,
		tokens:  opts.Tokens,
		streams: streams,
		closeFn: closeFn,
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(opts.API)
			r.SetXForwarded()
		},
		// Flush every write at once: the API's event stream must not sit in a buffer.
		FlushInterval: -1,
		ErrorHandler:  p.upstreamError,
	}
	p.mux = http.NewServeMux()
	p.mux.Handle("/healthz", httpapi.Healthz())
	p.mux.Handle("/readyz", httpapi.Readyz(p.ready))
	p.mux.HandleFunc(APIPrefix, p.serveAPI)
	p.mux.HandleFunc("/", p.serveStatic)
	return p
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// CloseStreams ends every request still being proxied, event streams included: call it when the
// server shuts down (http.Server.RegisterOnShutdown), or Shutdown would wait for streams that
// never end. Browsers' EventSource reconnects by itself, to this server's successor.
func (p *Proxy) CloseStreams() { p.closeFn() }

func (p *Proxy) serveAPI(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(p.streams, cancel)
	defer stop()
	out := r.WithContext(ctx)
	out.Header = r.Header.Clone()
	if err := p.authorize(ctx, out.Header); err != nil {
		p.upstreamError(w, r, err)
		return
	}
	p.proxy.ServeHTTP(w, out)
}

// authorize puts the API's bearer token in h, replacing whatever the client sent.
func (p *Proxy) authorize(ctx context.Context, h http.Header) error {
	if p.tokens == nil {
		return nil
	}
	token, err := p.tokens.Token(ctx)
	if err != nil {
		return err
	}
	h.Set("Authorization", "Bearer "+token)
	return nil
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away, or the server is closing: nobody to answer
	}
	p.log.Warn("api unreachable", "path", r.URL.Path, "error", err.Error())
	w.Header().Set("Retry-After", "1")
	httpapi.WriteError(w, http.StatusBadGateway, "api unavailable", "")
}

// ready: the app's files are there and the API answers its liveness check. The API's own
// readiness (its stores) is not required: with MongoDB down the page still loads and says so.
func (p *Proxy) ready(ctx context.Context) error {
	if _, err := fs.Stat(p.root, "index.html"); err != nil {
		return fmt.Errorf("no index.html in %s: %w", p.rootOS, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.api.JoinPath("/healthz").String(), nil)
	if err != nil {
		return err
	}
	if err := p.authorize(ctx, req.Header); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("api /healthz: %s", resp.Status)
	}
	return nil
}

// serveStatic serves files from Root: "/" is index.html, directories and missing files are 404.
// Vite names everything under assets/ by content hash, so those are cached for a year; the
// page itself is revalidated every time, so a new deployment shows at the next load.
func (p *Proxy) serveStatic(w http.ResponseWriter, r *http.Request) {
	if !httpapi.Allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	info, err := fs.Stat(p.root, name)
	if err != nil || info.IsDir() {
		httpapi.NotFound(w, r)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeFileFS(w, r, p.root, name)
}

// ReadHeaderTimeout and IdleTimeout suit a public web server; there is no write timeout,
// because an event stream lasts as long as the page is open.
const (
	ReadHeaderTimeout = 5 * time.Second
	IdleTimeout       = 2 * time.Minute
)
