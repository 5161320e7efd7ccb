package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-voting/tally/go/test/runfile"
	"github.com/tally-voting/tally/k8s/imagepins"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testConfig() Config {
	var v Values
	v.Registry, v.Repository = "registry.test:5000", "tally"
	return Config{Values: v, Digests: map[string]string{"consumer": digest}}
}

func TestManifestPinsOurImagesAndKeepsVersionedOnes(t *testing.T) {
	in := "containers:\n  - name: c\n    image: consumer\n  - image: \"redis:8.0.6\"\n    name: r\n"
	got, err := testConfig().Manifest("m.yaml", in)
	if err != nil {
		t.Fatal(err)
	}
	want := "containers:\n  - name: c\n    image: registry.test:5000/tally/consumer@" + digest +
		"\n  - image: redis:8.0.6\n    name: r\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestManifestRefusesWhatItCannotPin(t *testing.T) {
	for _, tc := range []struct{ name, image, wantErr string }{
		{"unknown image of ours", "api", `no image named "api"`},
		{"third-party without a tag", "redis", `no image named "redis"`},
		{"third-party path without a tag", "grafana/grafana", "not pinned"},
		{"latest", "grafana/grafana:latest", "not pinned"},
		{"empty tag", "mongo:", "not pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testConfig().Manifest("m.yaml", "spec:\n  image: "+tc.image+"\n")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "m.yaml:2") {
				t.Errorf("error = %v, want one naming m.yaml:2 and %q", err, tc.wantErr)
			}
		})
	}
}

func TestManifestPinsThirdPartyImagesFromThePins(t *testing.T) {
	cfg := testConfig()
	cfg.Pins = map[string]string{"grafana/grafana:12.1.1": digest}
	in := "spec:\n  image: grafana/grafana:12.1.1\n  image: redis:8.0.6\n"
	got, err := cfg.Manifest("m.yaml", in)
	if want := "spec:\n  image: grafana/grafana:12.1.1@" + digest + "\n  image: redis:8.0.6\n"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	cfg.Values.Images.RequireDigests = true
	_, err = cfg.Manifest("m.yaml", in)
	if err == nil || !strings.Contains(err.Error(), `m.yaml:3: third-party image "redis:8.0.6" has no digest`) ||
		!strings.Contains(err.Error(), "crane digest redis:8.0.6") || strings.Contains(err.Error(), "grafana") {
		t.Errorf("with digests required: %v, want an error naming redis:8.0.6 only, and how to pin it", err)
	}
}

func TestTheRepositorysPinsRead(t *testing.T) {
	pins, err := imagepins.Read(runfile.Path(t, "PINS"))
	if err != nil || len(pins) == 0 {
		t.Errorf("k8s/image-pins.txt: %v, %d pins", err, len(pins))
	}
}

func TestRefRefusesMalformedDigests(t *testing.T) {
	for _, d := range []string{"", "sha256:abc", "sha512:" + strings.Repeat("0", 64), strings.ToUpper(digest)} {
		cfg := testConfig()
		cfg.Digests["consumer"] = d
		if _, err := cfg.Ref("consumer"); err == nil {
			t.Errorf("digest %q accepted", d)
		}
	}
}

func TestConfigMapHoldsFilesVerbatim(t *testing.T) {
	dir := t.TempDir()
	json := "{\n  \"a\": 1,\n\n  \"b\": \"x — y\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "d.json"), []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ConfigMap("ns", "cm", []string{filepath.Join(dir, "d.json")})
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ns\n" +
		"  labels:\n    app.kubernetes.io/part-of: tally\ndata:\n" +
		"  d.json: |\n    {\n      \"a\": 1,\n\n      \"b\": \"x — y\"\n    }\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRunWritesManifestsAndRefs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	d := write("consumer.digest", digest+"\n")
	m := write("m.yaml", "image: consumer\n")
	settings := write("settings.yaml", strings.Replace(readFile(t, runfile.Path(t, "SETTINGS")), "registry: docker.io", "registry: r.test", 1))
	settings = write("settings.yaml", strings.Replace(readFile(t, settings), "repository: tally", "repository: p", 1))
	keys := runfile.Path(t, "REDIS_KEYS")
	out, refs := filepath.Join(dir, "out.yaml"), filepath.Join(dir, "refs.txt")
	err := run([]string{"--settings", settings, "--redis-keys", keys, "--digest", "consumer=" + d,
		"--out", out, "--refs", refs, m})
	if err != nil {
		t.Fatal(err)
	}
	gotRefs, _ := os.ReadFile(refs)
	if want := "consumer r.test/p/consumer@" + digest + "\n"; string(gotRefs) != want {
		t.Errorf("refs = %q, want %q", gotRefs, want)
	}
	// The Strimzi images built here are in the refs only when the settings choose them.
	sd := write("strimzi-operator.digest", strings.Replace(digest, "0", "1", 1)+"\n")
	for choice, want := range map[string]string{
		"upstream": "consumer r.test/p/consumer@" + digest + "\n",
		"ours": "consumer r.test/p/consumer@" + digest + "\nstrimzi-operator r.test/p/strimzi-operator@" +
			strings.Replace(digest, "0", "1", 1) + "\n",
	} {
		s := write("settings-"+choice+".yaml", strings.Replace(readFile(t, settings), "strimzi: ours", "strimzi: "+choice, 1))
		if err := run([]string{"--settings", s, "--redis-keys", keys, "--digest", "consumer=" + d,
			"--optional-digest", "strimzi-operator=" + sd, "--out", out, "--refs", refs, m}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(refs); string(got) != want {
			t.Errorf("images.strimzi: %s: refs = %q, want %q", choice, got, want)
		}
	}
	if err := run([]string{"--settings", settings, "--redis-keys", keys, "--out", out, m}); err == nil {
		t.Error("a render without the consumer's digest succeeded")
	}
	if err := run([]string{"--settings", settings, "--redis-keys", keys, "--digest", "consumer=" + d,
		"--out", out, write("typo.yaml", "host: {{ .Domian }}\n")}); err == nil || !strings.Contains(err.Error(), "typo.yaml") {
		t.Errorf("a template naming a setting that does not exist: %v, want an error naming the file", err)
	}
}
