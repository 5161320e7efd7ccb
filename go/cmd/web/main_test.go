package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	cfg, err := configFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8000" || cfg.WebRoot != "/srv/web" || cfg.API.String() != "http://127.0.0.1:3000" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestConfigFromEnv(t *testing.T) {
	cfg, err := configFromEnv(env(map[string]string{
		"HTTP_ADDR": ":80", "WEB_ROOT": "/www", "API_URL": "http://api:3000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":80" || cfg.WebRoot != "/www" || cfg.API.Host != "api:3000" {
		t.Errorf("got %+v", cfg)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	for _, tt := range []struct{ name, value string }{
		{"API_URL", "api:3000"},
		{"API_URL", "ftp://api"},
		{"API_URL", "http://"},
		{"SHUTDOWN_TIMEOUT", "soon"},
	} {
		_, err := configFromEnv(env(map[string]string{tt.name: tt.value}))
		if err == nil || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("%s=%q: error %v, want one naming %s", tt.name, tt.value, err, tt.name)
		}
	}
}

// run serves the files and stops cleanly when its context ends.
func TestRunServesAndStops(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("tally"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := configFromEnv(env(map[string]string{"HTTP_ADDR": addr, "WEB_ROOT": root}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tally" {
		t.Errorf("GET /: %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestRunFailsWithoutWebRoot(t *testing.T) {
	cfg, _ := configFromEnv(env(map[string]string{"WEB_ROOT": filepath.Join(t.TempDir(), "none")}))
	if err := run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "WEB_ROOT") {
		t.Errorf("run: %v, want an error naming WEB_ROOT", err)
	}
}
