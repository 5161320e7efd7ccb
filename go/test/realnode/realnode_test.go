// Package realnode_test runs Tally's deployment on a real Kubernetes node (go/internal/kubenode:
// containerd, runc, kubelet, kube-proxy, CoreDNS, a loopback registry) joined to the test
// control plane (go/internal/kubecluster), with //k8s:apply's own script (k8s/apply.sh) doing
// what it does on a real cluster: installing the Strimzi operator from the images built here
// (images.strimzi: ours), pushing the images, applying the rendered manifests and waiting.
// Nothing is marked Ready by the test: every pod's containers are processes of this machine,
// and the Kafka resources are reconciled by Strimzi's operator.
package realnode_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/kubecluster"
	"github.com/tally-voting/tally/go/internal/kubenode"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/test/runfile"
)

func TestMain(m *testing.M) { os.Exit(kubenode.Main(m)) }

// env is a running node, its control plane and registry.
type env struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	cluster *kubecluster.Cluster
	node    *kubenode.Node
	started time.Time
}

// start brings up the registry, the control plane, the node and CoreDNS, and serves the
// node's volumes; everything stops when the test ends. firewall is kube-router's binary, for a
// node that enforces NetworkPolicies, or "" (kubenode.Config.Firewall).
func start(t *testing.T, ctx context.Context, firewall string) *env {
	t.Helper()
	e := &env{t: t, ctx: ctx, dir: t.TempDir(), started: time.Now()}
	logs := os.Stderr
	reg, err := stack.Start(ctx, logs, []stack.Process{kubenode.RegistryProcess(e.mkdir("registry"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	nodeImages, err := kubenode.Push(ctx, runfile.Path(t, "NODE_PUSH"), "tally-node")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kubecluster.Config{Dir: e.mkdir("cluster"), Log: logs, Address: kubenode.NodeIP, RealNode: true}.FromRunfiles()
	if err != nil {
		t.Fatal(err)
	}
	if e.cluster, err = kubecluster.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cluster.Stop)
	e.node, err = kubenode.Start(ctx, kubenode.Config{
		Bin:          filepath.Dir(runfile.Path(t, "KUBELET")),
		Dir:          e.mkdir("node"),
		Kubeconfig:   e.cluster.Kubeconfig,
		Kubectl:      e.cluster.Kubectl,
		SandboxImage: nodeImages["pause"],
		Registries:   []string{kubenode.Registry},
		Log:          logs,
		Firewall:     firewall,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.node.Stop(); err != nil {
			t.Errorf("stop the node: %v", err)
		}
	})
	volumes, stopVolumes := context.WithCancel(ctx)
	t.Cleanup(stopVolumes)
	go e.node.ServeVolumes(volumes, e.cluster.Kubectl, logs)
	e.kubectl("", "wait", "--for=condition=Ready", "node/"+kubenode.Name, "--timeout=2m")
	e.kubectl(kubenode.DNSManifest(nodeImages["coredns"]), "apply", "-f", "-")
	e.kubectl("", "rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=2m")
	e.logf("node Ready, CoreDNS running")
	return e
}

func (e *env) mkdir(name string) string {
	e.t.Helper()
	d := filepath.Join(e.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// logf logs with the time since the test's node started.
func (e *env) logf(format string, args ...any) {
	e.t.Helper()
	e.t.Logf("[%v] %s", time.Since(e.started).Round(time.Second), fmt.Sprintf(format, args...))
}

func (e *env) kubectl(stdin string, args ...string) string {
	e.t.Helper()
	out, err := e.cluster.Kubectl(e.ctx, stdin, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// rendered is a render's output: the manifests and the refs of the images to push.
type rendered struct{ manifests, refs string }

// realnodeRender is //k8s:realnode_manifests: Tally's manifests rendered with the real-node
// test's settings (k8s/realnode-settings.yaml: one broker, the MongoDB-wire server, Strimzi's
// and Redis's images built here, a registry on the node's loopback).
func realnodeRender(t *testing.T) rendered {
	return rendered{runfile.Path(t, "MANIFESTS"), runfile.Path(t, "REFS")}
}

// only writes the documents of r's manifests whose kind is one of kinds, in their order, to a
// file of their own, and returns it with r's refs.
func (e *env) only(r rendered, kinds ...string) rendered {
	e.t.Helper()
	data, err := os.ReadFile(r.manifests)
	if err != nil {
		e.t.Fatal(err)
	}
	var docs []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		for _, k := range kinds {
			if strings.Contains("\n"+doc+"\n", "\nkind: "+k+"\n") {
				docs = append(docs, doc)
				break
			}
		}
	}
	out := filepath.Join(e.mkdir("manifests"), "manifests.yaml")
	if err := os.WriteFile(out, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return rendered{out, r.refs}
}

// apply runs k8s/apply.sh (//k8s:apply, //k8s:delete) in mode on rendered manifests, with the
// Strimzi release's install files from the shared copy, and returns its output.
func (e *env) apply(mode string, r rendered, extra ...string) (string, error) {
	e.t.Helper()
	args := append([]string{runfile.Path(e.t, "APPLY"), mode, r.manifests, r.refs, runfile.Path(e.t, "PUSH"),
		runfile.Path(e.t, "STRIMZI"), runfile.Path(e.t, "STRIMZI_PIN"),
		"--kubeconfig", e.cluster.Kubeconfig, "--strimzi-install", runfile.Path(e.t, "STRIMZI_INSTALL")}, extra...)
	cmd := exec.CommandContext(e.ctx, "bash", args...)
	// The push launcher's flags name the registry; the machine's own settings must not.
	cmd.Env = append(os.Environ(), "TALLY_REGISTRY=", "TALLY_REPOSITORY=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pods logs every pod with its phase, readiness and restarts, and each container with its
// process on this machine (from containerd and /proc), and fails the test for a running
// container without a live process.
func (e *env) pods(namespaces ...string) {
	e.t.Helper()
	procs, err := e.node.Processes(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	byContainer := map[string]kubenode.Process{}
	for _, p := range procs {
		byContainer[p.Container] = p
	}
	var lines []string
	for _, ns := range namespaces {
		out := e.kubectl("", "get", "pods", "-n", ns, "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.phase}{range .status.containerStatuses[*]}|{.name} {.ready} {.restartCount} {.containerID} {.state.running.startedAt}{end}{"\n"}{end}`)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			parts := strings.Split(line, "|")
			lines = append(lines, fmt.Sprintf("pod %s/%s", ns, parts[0]))
			for _, c := range parts[1:] {
				f := strings.Fields(c)
				if len(f) < 4 {
					lines = append(lines, fmt.Sprintf("  container %s: not started", c))
					continue
				}
				id := strings.TrimPrefix(f[3], "containerd://")
				p, ok := byContainer[id]
				if len(f) == 5 && !ok {
					e.t.Errorf("pod %s/%s: container %s runs (since %s) but containerd has no running task %s", ns, parts[0], f[0], f[4], id)
				}
				lines = append(lines, fmt.Sprintf("  container %s ready=%s restarts=%s pid=%d: %.160s", f[0], f[1], f[2], p.PID, p.Command))
			}
		}
	}
	e.logf("pods and their processes:\n%s", strings.Join(lines, "\n"))
}

// resolver asks the cluster's CoreDNS, at its Service address.
var resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(kubenode.DNSIP, "53"))
}}

// dial connects to a cluster address: a Service's or a pod's name (Strimzi advertises brokers
// as <pod>.<service>.<namespace>.svc) resolved by CoreDNS, or an IP.
func dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		name := host
		if strings.HasSuffix(name, ".svc") {
			name += ".cluster.local"
		}
		addrs, err := resolver.LookupHost(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("resolve %s at CoreDNS: %w", host, err)
		}
		host = addrs[0]
	}
	return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, net.JoinHostPort(host, port))
}

// dialerFunc is dial as the database driver's dialer.
type dialerFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}
