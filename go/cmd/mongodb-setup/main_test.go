package main

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/mongosetup"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSettings(t *testing.T) {
	cfg, err := configFromEnv(env(map[string]string{
		"MEMBERS": "a:27017, b:27017", "REPLICA_SET": "rs0", "USERS": "true",
		"ROOT_USER": "root", "ROOT_PASSWORD": " pw with spaces ", "CONSUMER_PASSWORD": "c", "API_PASSWORD": "a",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Setup.Members) != 2 || cfg.Setup.ReplicaSet != "rs0" || len(cfg.Setup.Users) != 2 || cfg.RootPass != " pw with spaces " {
		t.Errorf("config %+v", cfg)
	}
	consumer := []mongosetup.Role{{Role: "readWrite", DB: "tally"}, {Role: "readWrite", DB: "tally_recent"}}
	if u := cfg.Setup.Users[0]; u.Name != "consumer" || u.Password != "c" || !slices.Equal(u.Roles, consumer) {
		t.Errorf("consumer %+v", u)
	}
	api := []mongosetup.Role{{Role: "read", DB: "tally"}, {Role: "read", DB: "tally_recent"}}
	if u := cfg.Setup.Users[1]; u.Name != "api" || u.Password != "a" || !slices.Equal(u.Roles, api) {
		t.Errorf("api %+v", u)
	}
	_, err = configFromEnv(env(map[string]string{"USERS": "true", "ROOT_USER": "root", "CONSUMER_PASSWORD": "c"}))
	for _, want := range []string{"MEMBERS", "ROOT_PASSWORD", "API_PASSWORD"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("settings without %s: %v", want, err)
		}
	}
}

// Against the real MongoDB-wire server the stack started (FerretDB, MONGO_URL): with the test
// settings' choice (no replica set, no users) the setup completes; asked for a replica set it
// stops with the server's refusal instead of pretending.
func TestAgainstTheRealServer(t *testing.T) {
	u, err := url.Parse(os.Getenv("MONGO_URL"))
	if err != nil || u.Host == "" {
		t.Fatalf("MONGO_URL %q: run through :main_stack_test", os.Getenv("MONGO_URL"))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := map[string]string{"MEMBERS": u.Host, "POLL_INTERVAL": "100ms", "SETUP_TIMEOUT": "20s"}
	cfg, err := configFromEnv(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), cfg, log); err != nil {
		t.Errorf("setup without a replica set or users: %v", err)
	}

	base["REPLICA_SET"] = "rs0"
	cfg, err = configFromEnv(env(base))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, cfg, log); err == nil || !strings.Contains(err.Error(), "replSetGetStatus") {
		t.Errorf("setup of a replica set on a server without one: %v, want replSetGetStatus's refusal", err)
	}
}
