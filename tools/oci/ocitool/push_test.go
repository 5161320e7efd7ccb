package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The settings' precedence and the tags, against go-containerregistry's in-process registry
// (k8s/images/imagetest pushes the real images to a real registry).
func TestPushPrecedenceAndTags(t *testing.T) {
	host, _, layoutDir, digest := registryAndImage(t)

	// The environment beats the rule's defaults; a flag beats the environment. --tag replaces
	// the rule's tags.
	t.Setenv("TALLY_REGISTRY", host)
	t.Setenv("TALLY_REPOSITORY", "from-env")
	var out bytes.Buffer
	args := []string{
		"--default-registry", "registry.invalid", "--default-repository", "from-rule", "--default-tag", "latest",
		"--repository", "from-flag", "--tag", "v1", "--tag", "v2", "--image", "app=" + layoutDir,
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := pushCommand(context.Background(), logger, args, &out); err != nil {
		t.Fatal(err)
	}
	want := host + "/from-flag/app@" + digest.String() + "\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
	repo, err := name.NewRepository(host + "/from-flag/app")
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, ",") != "v1,v2" {
		t.Errorf("tags %q, want v1,v2 (the rule's latest replaced)", tags)
	}
	for _, tag := range tags {
		desc, err := remote.Head(repo.Tag(tag))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != digest {
			t.Errorf("%s points at %s, want %s", tag, desc.Digest, digest)
		}
	}
}

// The settings file (what //k8s:push passes) beats the rule's defaults and loses to the
// environment and the flags.
func TestPushSettingsFile(t *testing.T) {
	host, dir, layoutDir, digest := registryAndImage(t)
	settings := filepath.Join(dir, "settings.yaml")
	if err := os.WriteFile(settings, []byte("# a deployment's settings\nregistry: "+host+"\nrepository: contest/tally\ndomain: x.example\nkafka: {brokers: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	push := func(extra ...string) string {
		t.Helper()
		var out bytes.Buffer
		args := append([]string{"--default-registry", "registry.invalid", "--default-repository", "from-rule",
			"--settings", settings, "--image", "app=" + layoutDir}, extra...)
		if err := pushCommand(context.Background(), logger, args, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	t.Setenv("TALLY_REGISTRY", "")
	t.Setenv("TALLY_REPOSITORY", "")
	if got, want := push(), host+"/contest/tally/app@"+digest.String()+"\n"; got != want {
		t.Errorf("with the settings: printed %q, want %q", got, want)
	}
	t.Setenv("TALLY_REPOSITORY", "from-env")
	if got, want := push(), host+"/from-env/app@"+digest.String()+"\n"; got != want {
		t.Errorf("with $TALLY_REPOSITORY: printed %q, want %q", got, want)
	}
	if got, want := push("--repository", "from-flag"), host+"/from-flag/app@"+digest.String()+"\n"; got != want {
		t.Errorf("with --repository: printed %q, want %q", got, want)
	}
	if err := pushCommand(context.Background(), logger, []string{"--settings", filepath.Join(dir, "missing.yaml"),
		"--image", "app=" + layoutDir}, io.Discard); err == nil || !strings.Contains(err.Error(), "settings") {
		t.Errorf("a missing settings file: got %v, want an error naming the settings", err)
	}
}

func TestPushRejectsBadArguments(t *testing.T) {
	t.Setenv("TALLY_REGISTRY", "")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, args := range [][]string{
		{"--image", "app=some-layout"}, // no registry anywhere
		{"--registry", "127.0.0.1:1", "--image", "no-equals-sign"},
		{"--registry", "127.0.0.1:1", "stray-argument"},
	} {
		if err := pushCommand(context.Background(), logger, args, io.Discard); err == nil {
			t.Errorf("push %q succeeded", args)
		}
	}
}

// registryAndImage starts an in-process registry for the test and writes a one-layer image's
// layout under a temp dir: the registry's host, the temp dir, the layout and the image's digest.
func registryAndImage(t *testing.T) (host, dir, layoutDir string, digest v1.Hash) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	dir = t.TempDir()
	img, done, err := buildImage(imageSpec{Layers: []string{testLayer(t, dir, "app", "app")}, OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	layoutDir = filepath.Join(dir, "layout")
	if digest, err = writeLayout(layoutDir, img); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), dir, layoutDir, digest
}
