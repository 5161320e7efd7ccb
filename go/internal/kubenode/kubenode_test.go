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
// (grpc-front) as a Deployment's pod with a readiness probe, and reaches it through its
// Service's address, which only kube-proxy's rules lead to the pod. The pod's container must be
// a real process, replaced by another when the pod is deleted; CoreDNS resolves the Service.
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
		Kubectl:      cluster.Kubectl,
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
	kubectl(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: front, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
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
        lifecycle:
          preStop:
            sleep: {seconds: 3}
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec:
  selector: {app: front}
  ports: [{port: 80, targetPort: 8080}]
`, images["grpc-front"]), "apply", "-f", "-")
	kubectl("", "rollout", "status", "deployment/front", "--timeout=3m")
	t.Logf("pod Ready %v after start", time.Since(started).Round(time.Millisecond))
	ip := kubectl("", "get", "service/front", "-o", "jsonpath={.spec.clusterIP}")
	first := frontProcess(ctx, t, node, kubectl)
	body, err := get(ctx, "http://"+ip+"/healthz")
	if err != nil {
		t.Fatalf("through the Service %s: %v", ip, err)
	}
	t.Logf("GET http://%s/healthz through kube-proxy: %q", ip, body)

	// The pod deleted: the Deployment's new pod is a new process, the old one is gone, and the
	// Service leads to the new one.
	kubectl("", "delete", "pod", "-l", "app=front", "--wait=true")
	kubectl("", "rollout", "status", "deployment/front", "--timeout=3m")
	second := frontProcess(ctx, t, node, kubectl)
	if second.PID == first.PID || second.Container == first.Container {
		t.Errorf("after the pod's deletion the same container runs: %+v", second)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", first.PID)); err == nil {
		t.Errorf("the deleted pod's process %d still exists", first.PID)
	}
	if _, err := get(ctx, "http://"+ip+"/healthz"); err != nil {
		t.Fatalf("through the Service after the pod's deletion: %v", err)
	}

	// A rollout of 2 replicas while a client calls through the Service: with the preStop pause
	// the old pods keep serving until kube-proxy has dropped them, so no call fails.
	kubectl("", "scale", "deployment/front", "--replicas=2")
	kubectl("", "rollout", "status", "deployment/front", "--timeout=3m")
	calls, failed := underLoad(ctx, "http://"+ip+"/healthz", func() {
		kubectl("", "rollout", "restart", "deployment/front")
		kubectl("", "rollout", "status", "deployment/front", "--timeout=3m")
	})
	t.Logf("rollout under load: %d calls through the Service, %d failed", calls, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d calls failed during the rollout, first: %v", len(failed), calls, failed[0])
	}

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

// frontProcess logs every container process of the node and returns the running grpc-front's.
func frontProcess(ctx context.Context, t *testing.T, node *Node, kubectl func(string, ...string) string) Process {
	t.Helper()
	id := strings.TrimPrefix(kubectl("", "get", "pod", "-l", "app=front", "--field-selector=status.phase=Running",
		"-o", "jsonpath={.items[0].status.containerStatuses[0].containerID}"), "containerd://")
	procs, err := node.Processes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var front Process
	for _, p := range procs {
		t.Logf("container %.12s: pid %d: %s", p.Container, p.PID, p.Command)
		if p.Container == id && strings.Contains(p.Command, "grpc-front") {
			front = p
		}
	}
	if front.PID == 0 {
		t.Fatalf("no running grpc-front process for container %q among %d", id, len(procs))
	}
	return front
}

// underLoad calls url through new connections, one after another, while during runs, and
// returns how many calls it made and the errors of those that failed.
func underLoad(ctx context.Context, url string, during func()) (int, []error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	stop := make(chan struct{})
	done := make(chan struct{})
	calls, failed := 0, []error(nil)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			calls++
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err == nil {
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
			}
			if err != nil {
				failed = append(failed, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	during()
	close(stop)
	<-done
	return calls, failed
}

// get polls url through a new connection each time (a kept-alive one would still lead to a
// deleted pod's address) until it answers 200.
func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
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
