package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tally-voting/tally/go/test/runfile"
	"github.com/tally-voting/tally/k8s/imagepins"
)

// layoutDigest reads the digest of the image in an OCI layout (the oci_image output) from its
// index.json and checks it against the hash of the manifest blob itself, independently of the
// .digest file the render used.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s/index.json: want one manifest, got %s (%v)", dir, data, err)
	}
	digest := index.Manifests[0].Digest
	blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
		t.Fatalf("%s: manifest blob hashes to %s, index says %s", dir, got, digest)
	}
	return digest
}

// builtImages maps each image's bare name to the digest of the layout Bazel built.
func builtImages(t *testing.T) map[string]string {
	t.Helper()
	root := os.Getenv("TEST_SRCDIR")
	built := map[string]string{}
	for _, kv := range os.Environ() {
		key, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(key, "IMAGE_") {
			continue
		}
		fields := strings.Fields(value)
		for _, path := range fields[1:] {
			if !strings.HasSuffix(path, ".digest") { // the oci_image's other output
				built[fields[0]] = layoutDigest(t, filepath.Join(root, path))
			}
		}
	}
	if len(built) == 0 {
		t.Fatal("no images ($IMAGE_<NAME>)")
	}
	return built
}

var imageValue = regexp.MustCompile(`(?m)^\s*(?:-\s+)?image:\s*(\S+)\s*$`)

func TestRenderedManifestsPinTheBuiltImages(t *testing.T) {
	built := builtImages(t)
	// The committed settings run optional images too (Redis's, with images.redis: ours).
	optional := builtOptionalImages(t)
	pinned := regexp.MustCompile(`^[a-z0-9.:-]+(?:/[a-z0-9._-]+)*/([a-z0-9-]+)@(sha256:[0-9a-f]{64})$`)
	pins, err := imagepins.Read(runfile.Path(t, "PINS"))
	if err != nil {
		t.Fatal(err)
	}
	settings, err := LoadSettings(runfile.Path(t, "SETTINGS"))
	if err != nil || !settings.Images.RequireDigests {
		t.Errorf("the committed settings: requireDigests %v (%v), want true", settings.Images.RequireDigests, err)
	}
	used := map[string]bool{}
	for _, env := range []string{"MANIFESTS", "CLOUDRUN"} {
		path := runfile.Path(t, env)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		images := imageValue.FindAllStringSubmatch(string(data), -1)
		if len(images) == 0 {
			t.Fatalf("%s: no images", env)
		}
		for _, m := range images {
			ref := m[1]
			if p := pinned.FindStringSubmatch(ref); p != nil {
				name, digest := p[1], p[2]
				want, ours := built[name]
				if !ours {
					want, ours = optional[name]
				}
				if !ours {
					t.Errorf("%s: %s is pinned but is not one of our images %v", env, ref, built)
					continue
				}
				if digest != want {
					t.Errorf("%s: %s, but the built %s image is %s", env, ref, name, want)
				}
				used[name] = true
				continue
			}
			// Anything else must be a third-party image pinned to a version and, with the committed
			// settings (images.requireDigests: true), to the digest of k8s/image-pins.txt: no
			// image is named by tag alone.
			last := ref[strings.LastIndex(ref, "/")+1:]
			_, tag, ok := strings.Cut(last, ":")
			if _, ours := built[last]; ours || !ok || tag == "" || tag == "latest" {
				t.Errorf("%s: image %q is neither ours pinned by digest nor a versioned third-party image", env, ref)
			}
			if named, digest, ok := strings.Cut(ref, "@"); !ok || pins[named] != digest {
				t.Errorf("%s: third-party image %q is not pinned to its digest in k8s/image-pins.txt", env, ref)
			}
		}
	}
	for name := range built {
		// The module-only image is for a WasmEdge RuntimeClass node (docs/kubernetes.md).
		if !used[name] && name != "wasm-module" {
			t.Errorf("image %s is built but no manifest runs it", name)
		}
	}
}
