package kubenode

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/kubecluster"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/test/runfile"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestPodRunsAsProcess starts the control plane and a real node, runs one of Tally's images
// (grpc-front) as a pod with a readiness probe, and reaches it through its Service's address,
// which only kube-proxy's rules lead to the pod. The pod's container must be a real process.
func TestPodRunsAsProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	logs := os.Stderr
	started := time.Now()

	reg, err := stack.Start(ctx, logs, []stack.Process{RegistryProcess(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	nodeImages, err := Push(ctx, runfile.Path(t, "NODE_PUSH"), "tally-node")
	if err != nil {
		t.Fatal(err)
	}
	images, err := Push(ctx, runfile.Path(t, "TEST_PUSH"), "tally")
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := kubecluster.Config{Dir: mkdir(t, dir, "cluster"), Log: logs, Address: NodeIP, RealNode: true}.FromRunfiles()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := kubecluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	node, err := Start(ctx, Config{
		Bin:          filepath.Dir(runfile.Path(t, "KUBELET")),
		Dir:          mkdir(t, dir, "node"),
		Kubeconfig:   cluster.Kubeconfig,
		SandboxImage: nodeImages["pause"],
		Registries:   []string{Registry},
		Log:          logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := node.Stop(); err != nil {
			t.Errorf("stop the node: %v", err)
		}
	}()
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		out, err := cluster.Kubectl(ctx, stdin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kubectl("", "wait", "--for=condition=Ready", "node/"+Name, "--timeout=2m")
	t.Logf("node Ready %v after start", time.Since(started).Round(time.Millisecond))

	kubectl(DNSManifest(nodeImages["coredns"]), "apply", "-f", "-")
	// The controller-manager makes each namespace's default ServiceAccount, which a Pod needs.
	kubectl("", "wait", "--for=create", "serviceaccount/default", "--timeout=1m")
	kubectl(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: front, namespace: default, labels: {app: front}}
spec:
  containers:
  - name: front
    image: %q
    env:
    - {name: HTTP_ADDR, value: ":8080"}
    - {name: PRODUCER_GRPC_TARGET, value: "127.0.0.1:1"}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec:
  selector: {app: front}
  ports: [{port: 80, targetPort: 8080}]
`, images["grpc-front"]), "apply", "-f", "-")
	kubectl("", "wait", "--for=condition=Ready", "pod/front", "--timeout=3m")
	t.Logf("pod Ready %v after start", time.Since(started).Round(time.Millisecond))

	id := strings.TrimPrefix(kubectl("", "get", "pod/front", "-o", "jsonpath={.status.containerStatuses[0].containerID}"), "containerd://")
	procs, err := node.Processes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range procs {
		t.Logf("container %.12s: pid %d: %s", p.Container, p.PID, p.Command)
		found = found || (p.Container == id && strings.Contains(p.Command, "grpc-front"))
	}
	if !found {
		t.Errorf("no running grpc-front process for container %s among %d", id, len(procs))
	}

	ip := kubectl("", "get", "service/front", "-o", "jsonpath={.spec.clusterIP}")
	body, err := get(ctx, "http://"+ip+"/healthz")
	if err != nil {
		t.Fatalf("through the Service %s: %v", ip, err)
	}
	t.Logf("GET http://%s/healthz through kube-proxy: %q", ip, body)

	// CoreDNS, itself a pod behind a Service, answers for the Service's name.
	kubectl("", "rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=2m")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(DNSIP, "53"))
	}}
	addrs, err := resolver.LookupHost(ctx, "front.default.svc.cluster.local")
	if err != nil || len(addrs) != 1 || addrs[0] != ip {
		t.Errorf("front.default.svc.cluster.local at CoreDNS = %v, %v; want [%s]", addrs, err, ip)
	}
}

func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			err = fmt.Errorf("HTTP %d: %s %v", resp.StatusCode, body, rerr)
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSysctlDiff: the comparison Main makes names every changed, removed and added setting.
func TestSysctlDiff(t *testing.T) {
	before := map[string]string{"kernel.panic": "1", "vm.overcommit_memory": "0", "net.ipv4.ip_forward": "0"}
	after := map[string]string{"kernel.panic": "10", "vm.overcommit_memory": "0", "kernel.new": "x"}
	got := strings.Join(SysctlDiff(before, after), "; ")
	want := "kernel.new is new: x; kernel.panic = 1, now 10; net.ipv4.ip_forward = 0, now gone"
	if got != want {
		t.Errorf("SysctlDiff = %q, want %q", got, want)
	}
	if diff := SysctlDiff(before, before); len(diff) != 0 {
		t.Errorf("SysctlDiff of equal snapshots = %v", diff)
	}
}
