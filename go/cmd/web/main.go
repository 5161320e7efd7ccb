// Command web serves Tally's webapp: the built Vue app (WEB_ROOT) and, under /api/, the Node API
// (API_URL), from one origin. The same static binary runs under //:up and as the webapp's
// container (port 8080 on Cloud Run: its non-root user cannot bind 80). Settings come from the
// environment (README.md); SIGTERM stops accepting, ends open event streams (browsers reconnect
// by themselves), finishes other requests, exits 0.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/tally-voting/tally/go/internal/envconf"
	"github.com/tally-voting/tally/go/internal/httpapi"
	"github.com/tally-voting/tally/go/internal/service"
	"github.com/tally-voting/tally/go/internal/webproxy"
)

// Config is the server's settings; README.md documents each variable.
type Config struct {
	HTTPAddr string
	WebRoot  string
	API      *url.URL
	// APIIDToken: call the API with a Google identity token for API_URL from the metadata
	// server at MetadataHost (the API is a private Cloud Run service).
	APIIDToken      bool
	MetadataHost    string
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
}

func configFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.Reader{Get: getenv}
	cfg := Config{
		HTTPAddr:        r.String("HTTP_ADDR", ":8000"),
		WebRoot:         r.String("WEB_ROOT", "/srv/web"),
		APIIDToken:      r.Bool("API_ID_TOKEN", false),
		MetadataHost:    r.String("GCE_METADATA_HOST", webproxy.DefaultMetadataHost),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 8*time.Second),
		LogLevel:        r.LogLevel("LOG_LEVEL", slog.LevelInfo),
	}
	raw := r.String("API_URL", "http://127.0.0.1:3000")
	api, err := url.Parse(raw)
	if err == nil && (api.Scheme != "http" && api.Scheme != "https" || api.Host == "") {
		err = fmt.Errorf("want http://host:port")
	}
	if err != nil {
		return cfg, fmt.Errorf("API_URL=%q: %w", raw, err)
	}
	cfg.API = api
	return cfg, r.Err()
}

func main() {
	service.Main("web", configFromEnv, func(c Config) slog.Level { return c.LogLevel }, run)
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if _, err := os.Stat(cfg.WebRoot); err != nil {
		return fmt.Errorf("WEB_ROOT: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	opts := webproxy.Options{Root: cfg.WebRoot, API: cfg.API, Logger: log}
	if cfg.APIIDToken {
		opts.Tokens = webproxy.NewIDTokens(cfg.MetadataHost, cfg.API.String())
	}
	proxy := webproxy.New(opts)
	srv := &http.Server{
		Handler:           proxy,
		ReadHeaderTimeout: webproxy.ReadHeaderTimeout,
		IdleTimeout:       webproxy.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(proxy.CloseStreams)
	log.Info("web serving", "http_addr", ln.Addr().String(), "web_root", cfg.WebRoot, "api", cfg.API.String(), "api_id_token", cfg.APIIDToken)
	if err := httpapi.Serve(ctx, srv, ln, cfg.ShutdownTimeout); err != nil {
		return err
	}
	log.Info("web stopped")
	return nil
}
