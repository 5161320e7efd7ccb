package kubenode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/tally-voting/tally/go/internal/stack"
)

// Registry is the node's plain-HTTP registry on loopback (Debian's docker-registry), where the
// test pushes the images the node runs: it exists only in the test's network namespace.
const Registry = "127.0.0.1:5000"

// RegistryProcess is the registry, for a stack, storing its data under dir.
func RegistryProcess(dir string) stack.Process {
	config := filepath.Join(dir, "registry.yml")
	return stack.Process{
		Name: "registry",
		Args: []string{"docker-registry", "serve", config},
		Setup: func(context.Context) error {
			return os.WriteFile(config, []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "registry"), Registry)), 0o644)
		},
		Ready: func(ctx context.Context) error { return stack.HTTPOK(ctx, "http://"+Registry+"/v2/") },
	}
}

// Push runs an oci_push launcher (//k8s:push, //tools/kube:node_push) against Registry and
// returns the references it printed: image name -> repo@sha256:...
func Push(ctx context.Context, launcher, repository string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, launcher, "--registry", Registry, "--repository", repository)
	cmd.Env = append(os.Environ(), "TALLY_REGISTRY=", "TALLY_REPOSITORY=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("push with %s: %w: %s", launcher, err, stderr.String())
	}
	refs := map[string]string{}
	prefix := Registry + "/" + repository + "/"
	for _, ref := range strings.Fields(stdout.String()) {
		name, _, ok := strings.Cut(strings.TrimPrefix(ref, prefix), "@")
		if !ok || !strings.HasPrefix(ref, prefix) {
			return nil, fmt.Errorf("push printed %q, not %s<name>@sha256:...", ref, prefix)
		}
		refs[name] = ref
	}
	return refs, nil
}
