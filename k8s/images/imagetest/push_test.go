// Package imagetest checks Tally's images from the outside: //k8s:push against a real registry
// (Debian's docker-registry, the Distribution registry, with htpasswd auth on loopback), and the
// API image actually running from its own root file system. The build-side checks (same bytes
// and digests from the same inputs) are //k8s/images:reproducibility_test.
package imagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// images reads name -> layout directory from IMAGES ("name=layout ..."), which the BUILD file
// fills from k8s/images.bzl: what //k8s:push pushes.
func images(t *testing.T) map[string]layout {
	t.Helper()
	out := map[string]layout{}
	for _, item := range strings.Fields(os.Getenv("IMAGES")) {
		name, dir, ok := strings.Cut(item, "=")
		if !ok {
			t.Fatalf("IMAGES: bad item %q", item)
		}
		out[name] = layout{dir: runfile(dir)}
	}
	if len(out) == 0 {
		t.Fatal("IMAGES is empty")
	}
	return out
}

// registry is a running docker-registry with one htpasswd user.
type registry struct {
	addr, user, password string
}

func startRegistry(t *testing.T) registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry (Debian's Distribution registry) is not on PATH: %v", err)
	}
	dir := t.TempDir()
	r := registry{addr: freeAddr(t), user: "tally", password: "test-only-" + fmt.Sprint(time.Now().UnixNano())}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "htpasswd"), r.user+":"+string(hash)+"\n")
	config := filepath.Join(dir, "config.yml")
	write(t, config, fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: tally-test
    path: %s
`, filepath.Join(dir, "storage"), r.addr, filepath.Join(dir, "htpasswd")))
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			// Auth is on: an anonymous client is turned away.
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET /v2/ without credentials: %s, want 401", resp.Status)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// push runs //k8s:push with a docker config dir holding the given auths, as a user would.
func push(t *testing.T, dockerConfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runfile(os.Getenv("PUSH")), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig, "HOME="+home,
		"TALLY_REGISTRY=", "TALLY_REPOSITORY=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return stdout.String(), nil
}

func (r registry) get(t *testing.T, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+r.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(r.user, r.password)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestPushToARealRegistry(t *testing.T) {
	imgs := images(t)
	reg := startRegistry(t)
	args := []string{"--registry", reg.addr, "--repository", "tally-test", "--tag", "test"}

	// Without credentials in the docker config, the push is refused: what makes the next push
	// work is the docker config file and nothing else.
	empty := t.TempDir()
	if out, err := push(t, empty, args...); err == nil {
		t.Fatalf("push without credentials succeeded:\n%s", out)
	}

	dockerConfig := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + reg.password))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.addr: map[string]string{"auth": auth}}})
	write(t, filepath.Join(dockerConfig, "config.json"), string(cfg))
	out, err := push(t, dockerConfig, args...)
	if err != nil {
		t.Fatalf("push: %v", err)
	}

	lines := strings.Fields(out)
	if len(lines) != len(imgs) {
		t.Fatalf("push printed %d references, want one per image (%d):\n%s", len(lines), len(imgs), out)
	}
	for _, ref := range lines {
		repo, digest, ok := strings.Cut(ref, "@")
		prefix := reg.addr + "/tally-test/"
		if !ok || !strings.HasPrefix(repo, prefix) {
			t.Errorf("printed %q, want %s<name>@sha256:...", ref, prefix)
			continue
		}
		name := strings.TrimPrefix(repo, prefix)
		l, ok := imgs[name]
		if !ok {
			t.Errorf("pushed %s, which is not one of the built images", name)
			continue
		}
		built, manifest := l.manifest(t)
		digestFile, err := os.ReadFile(l.dir + ".digest")
		if err != nil {
			t.Fatal(err)
		}
		if digest != built || string(digestFile) != built {
			t.Errorf("%s: pushed %s, layout holds %s, %s.digest says %s", name, digest, built, name, digestFile)
		}
		var m ociManifest
		if err := json.Unmarshal(manifest, &m); err != nil {
			t.Fatal(err)
		}
		// The registry serves the very manifest bytes that were built, by digest and by tag.
		for _, reference := range []string{digest, "test"} {
			resp, body := reg.get(t, "/v2/tally-test/"+name+"/manifests/"+reference, m.MediaType)
			sum := sha256.Sum256(body)
			if resp.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != built ||
				resp.Header.Get("Docker-Content-Digest") != built || !bytes.Equal(body, manifest) {
				t.Errorf("%s: GET manifests/%s: %s, digest header %s, body sha256:%x; want %s",
					name, reference, resp.Status, resp.Header.Get("Docker-Content-Digest"), sum, built)
			}
		}
		// And every blob the manifest names.
		for _, d := range append([]ociDescriptor{m.Config}, m.Layers...) {
			resp, body := reg.get(t, "/v2/tally-test/"+name+"/blobs/"+d.Digest, "*/*")
			sum := sha256.Sum256(body)
			if resp.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != d.Digest {
				t.Errorf("%s: blob %s: %s, body sha256:%x", name, d.Digest, resp.Status, sum)
			}
		}
	}
}
