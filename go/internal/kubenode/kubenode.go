// Package kubenode runs a real Kubernetes node for tests: containerd, the kubelet and kube-proxy,
// with runc running every container as a real process, inside namespaces the test binary made
// for itself (Main). The control plane is go/internal/kubecluster's, without its fake node.
//
// The binaries come from tools/kube/node.sh (kubelet, kube-proxy, CoreDNS, pause; built once per
// machine) and from Debian in the toolchain root (containerd, runc, the CNI plugins, iptables).
// docs/kubernetes.md says why a node in namespaces rather than in a VM, and what it changes.
package kubenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tally-voting/tally/go/internal/stack"
)

// Addresses of the node. They exist only in the test's network namespace (Main).
const (
	// NodeIP is the node's address; the API server listens there, so pods reach it.
	NodeIP = "10.200.0.1"
	// PodCIDR is the pods' range, on the node's bridge cni0.
	PodCIDR = "10.244.0.0/24"
	// ClusterCIDR is what kube-proxy treats as pod traffic.
	ClusterCIDR = "10.244.0.0/16"
	// ServiceCIDR is the Services' range (go/internal/kubecluster's API server's).
	ServiceCIDR = "10.96.0.0/16"
	// DNSIP is CoreDNS's Service address.
	DNSIP = "10.96.0.10"
	// Name is the node's name.
	Name = "tally-node"
)

// kernelDefaults are the kernel settings the kubelet wants (and, with protectKernelDefaults,
// only checks): each is shown to it with this value by a file bound over /proc/sys in the test's
// own mount namespace, so the check passes and the machine's settings are never written.
var kernelDefaults = map[string]string{
	"kernel/panic":         "10",
	"kernel/panic_on_oops": "1",
	"vm/overcommit_memory": "1",
	"vm/panic_on_oom":      "0",
}

// Config says where the binaries are and what the node joins.
type Config struct {
	// Bin holds kubelet, kube-proxy (tools/kube/node.sh).
	Bin string
	// Dir receives the node's state and logs; a test's temp dir.
	Dir string
	// Kubeconfig reaches the cluster's API server (at NodeIP) with admin rights.
	Kubeconfig string
	// SandboxImage is the pause image's reference in a registry the node pulls from.
	SandboxImage string
	// Registries are plain-HTTP registries (host:port) the node pulls from.
	Registries []string
	// Log receives every process's output.
	Log io.Writer
	// Kubectl reaches the cluster (kubecluster.Cluster.Kubectl): the kubelet counts as ready
	// only once its Node object exists, so that what starts after it finds the node. kube-router
	// looks its node up once, at start, and exits if it is not there yet: the kubelet's healthz
	// answers before it registers, and one run lost that race by 17 ms.
	Kubectl Kubectl
	// Firewall, when set, is kube-router's binary (tools/kube/kube-router.sh): it runs only as
	// the node's NetworkPolicy enforcer (no routing, no service proxy, no CNI config), writing
	// iptables rules and ipsets of the test's network namespace only. Without it the node, like
	// one whose network plugin enforces nothing, admits every connection.
	Firewall string
}

// firewallHealth is kube-router's health check, on the node's loopback.
const firewallHealth = "127.0.0.1:20244"

// Node is a running node.
type Node struct {
	cfg     Config
	cgroups []string // the node's cgroup in each hierarchy it uses
	stack   *stack.Stack
}

// Start starts containerd, the kubelet and kube-proxy and returns once the kubelet and
// kube-proxy answer their health checks; the caller waits for the Node object to be Ready.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if os.Getenv(insideEnv) != "1" {
		return nil, errors.New("kubenode.Start runs only inside the namespaces of kubenode.Main (TestMain)")
	}
	if cfg.Kubectl == nil {
		return nil, errors.New("kubenode.Config.Kubectl is required")
	}
	n := &Node{cfg: cfg}
	if err := n.fakeKernelDefaults(); err != nil {
		return nil, err
	}
	if err := n.makeCgroups(); err != nil {
		return nil, err
	}
	files, err := n.writeConfig()
	if err != nil {
		n.removeCgroups()
		return nil, err
	}
	// containerd enters the node's cgroups before it starts: the shims it spawns (and so every
	// container) stay in the node's tree, where Stop finds them all.
	var enter strings.Builder
	for _, cg := range n.cgroups {
		fmt.Fprintf(&enter, "echo $$ > %s/cgroup.procs && ", cg)
	}
	procs := []stack.Process{
		{
			Name: "containerd",
			Args: []string{"sh", "-c", enter.String() + "exec containerd --config " + files.containerd},
			Ready: func(ctx context.Context) error {
				return run(ctx, "ctr", "--address", containerdSocket, "version")
			},
		},
		{
			Name:  "kubelet",
			Needs: []string{"containerd"},
			Args: []string{filepath.Join(cfg.Bin, "kubelet"), "--config=" + files.kubelet,
				"--kubeconfig=" + cfg.Kubeconfig, "--root-dir=" + filepath.Join(cfg.Dir, "kubelet"),
				"--cert-dir=" + filepath.Join(cfg.Dir, "kubelet-pki"),
				"--hostname-override=" + Name, "--node-ip=" + NodeIP, "--v=1"},
			Ready: func(ctx context.Context) error {
				if err := stack.HTTPOK(ctx, "http://127.0.0.1:10248/healthz"); err != nil {
					return err
				}
				if _, err := cfg.Kubectl(ctx, "", "get", "node", Name); err != nil {
					return fmt.Errorf("node %s not registered yet: %w", Name, err)
				}
				return nil
			},
		},
		{
			Name:  "kube-proxy",
			Needs: []string{"kubelet"},
			Args:  []string{filepath.Join(cfg.Bin, "kube-proxy"), "--config=" + files.proxy, "--v=1"},
			Ready: func(ctx context.Context) error { return stack.HTTPOK(ctx, "http://127.0.0.1:10256/healthz") },
		},
	}
	if cfg.Firewall != "" {
		procs = append(procs, stack.Process{
			Name:  "kube-router",
			Needs: []string{"kubelet"},
			Args: []string{cfg.Firewall, "--run-firewall=true", "--run-router=false",
				"--run-service-proxy=false", "--enable-cni=false", "--kubeconfig=" + cfg.Kubeconfig,
				"--hostname-override=" + Name, "--service-cluster-ip-range=" + ServiceCIDR,
				"--health-port=20244", "--metrics-port=0"},
			Ready: func(ctx context.Context) error { return stack.HTTPOK(ctx, "http://"+firewallHealth+"/healthz") },
		})
	}
	s, err := stack.Start(ctx, cfg.Log, procs)
	if err != nil {
		n.removeCgroups()
		return nil, fmt.Errorf("start the node: %w", err)
	}
	n.stack = s
	return n, nil
}

// Exited reports a node process that exits without being asked to.
func (n *Node) Exited() <-chan error { return n.stack.Exited() }

// Stop stops kube-proxy and the kubelet, kills every process left in the node's cgroups (the
// containers, their shims, containerd) and removes the cgroups.
func (n *Node) Stop() error {
	n.stack.Stop()
	return errors.Join(n.removeCgroups(), n.unmountAll())
}

// unmountAll detaches what the kubelet and containerd mounted (volumes, container roots) under
// the node's folders, deepest first, so that the test's temp dir can be removed. They are in the
// test's own mount namespace and would go with it anyway; the test process outlives the node.
func (n *Node) unmountAll() error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		p := fields[4]
		if strings.HasPrefix(p, n.cfg.Dir+"/") || strings.HasPrefix(p, "/run/tally-node/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

const containerdSocket = "/run/tally-node/containerd.sock"

type configFiles struct{ containerd, kubelet, proxy string }

func (n *Node) writeConfig() (configFiles, error) {
	dir := n.cfg.Dir
	f := configFiles{
		containerd: filepath.Join(dir, "containerd.toml"),
		kubelet:    filepath.Join(dir, "kubelet.yaml"),
		proxy:      filepath.Join(dir, "kube-proxy.yaml"),
	}
	var hosts strings.Builder
	for _, r := range n.cfg.Registries {
		// containerd's registry hosts: plain HTTP to the test's loopback registries.
		d := filepath.Join(dir, "registries", r)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return f, err
		}
		fmt.Fprintf(&hosts, "%s ", r)
		toml := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+r, "http://"+r)
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(toml), 0o644); err != nil {
			return f, err
		}
	}
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "tally-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}],
               "dataDir": %q}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, PodCIDR, filepath.Join(dir, "cni-ipam"))
	containerd := fmt.Sprintf(`version = 3
root = %[1]q
state = "/run/tally-node/containerd"
oom_score = 0
# Plugins a test node has no use for; opt would write under /opt.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %[2]q

[ttrpc]
  address = "/run/tally-node/containerd.sock.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[3]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[4]q

[plugins."io.containerd.cri.v1.runtime"]
  # The machine withholds CAP_SYS_RESOURCE: no negative oom_score_adj (the kubelet asks -998 for
  # sandboxes, -997 for Guaranteed pods); containers keep at least containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %[5]q
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`, filepath.Join(dir, "containerd"), containerdSocket, n.cfg.SandboxImage,
		filepath.Join(dir, "registries"), filepath.Join(dir, "cni"))
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine's cgroups are a v1 hybrid; kubelet 1.35 refuses them unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[1]q
# Check, never write, the kernel settings it wants (see kernelDefaults).
protectKernelDefaults: true
# No negative oom_score_adj for itself either (CAP_SYS_RESOURCE is withheld).
oomScoreAdj: 0
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The API server reaches the kubelet (logs, exec) without a client certificate; the kubelet's
# port exists only in the test's network namespace.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
clusterDNS: [%[4]s]
clusterDomain: cluster.local
resolvConf: %[5]q
podLogsDir: %[6]q
serializeImagePulls: false
# A shared build machine's disk is not the node's to manage: no image GC or disk evictions.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
failSwapOn: false
rotateCertificates: false
`, n.cgroupRoot(), containerdSocket, NodeIP, DNSIP, filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "pods"))
	proxy := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]q
mode: iptables
clusterCIDR: %[2]s
hostnameOverride: %[3]s
bindAddress: %[4]s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# nf_conntrack_max and the conntrack timeouts are machine-wide: 0 leaves them as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, n.cfg.Kubeconfig, ClusterCIDR, Name, NodeIP)
	files := map[string]string{
		f.containerd: containerd,
		f.kubelet:    kubelet,
		f.proxy:      proxy,
		filepath.Join(dir, "cni", "10-tally-node.conflist"): cni,
		// Pods with dnsPolicy Default, and CoreDNS's upstream: there is none in the test's network.
		filepath.Join(dir, "resolv.conf"): "nameserver " + NodeIP + "\n",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return f, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return f, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f, os.MkdirAll("/run/tally-node", 0o755)
}

// fakeKernelDefaults binds files holding the kubelet's expected values over the kernel settings
// it checks, in this mount namespace only.
func (n *Node) fakeKernelDefaults() error {
	dir := filepath.Join(n.cfg.Dir, "sysctl")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, value := range kernelDefaults {
		file := filepath.Join(dir, strings.ReplaceAll(name, "/", "."))
		if err := os.WriteFile(file, []byte(value+"\n"), 0o644); err != nil {
			return err
		}
		if err := syscall.Mount(file, "/proc/sys/"+name, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the kubelet's view of %s: %w", name, err)
		}
	}
	return nil
}

// cgroupRoot is the node's own cgroup, named after its directory so two runs never share one.
func (n *Node) cgroupRoot() string {
	return "/tally-node-" + strconv.Itoa(os.Getpid())
}

// hierarchies lists the mounted cgroup v1 hierarchies (one directory per controller set) the
// kubelet and runc use, and the v2 one when it is mounted beside them.
func hierarchies() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		fstype, mountpoint := fields[sep+1], fields[4]
		if (fstype == "cgroup" || fstype == "cgroup2") && !slices.Contains(dirs, mountpoint) {
			dirs = append(dirs, mountpoint)
		}
	}
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted")
	}
	return dirs, nil
}

func (n *Node) makeCgroups() error {
	dirs, err := hierarchies()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		cg := filepath.Join(d, n.cgroupRoot())
		if err := os.Mkdir(cg, 0o755); err != nil {
			n.removeCgroups()
			return fmt.Errorf("make the node's cgroup: %w", err)
		}
		n.cgroups = append(n.cgroups, cg)
		// A new v1 cpuset cgroup has no CPUs or memory nodes, and refuses processes until
		// given its parent's.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			value, err := os.ReadFile(filepath.Join(d, f))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(cg, f), value, 0o644)
			}
			if err != nil {
				n.removeCgroups()
				return fmt.Errorf("give the node's cpuset cgroup its parent's %s: %w", f, err)
			}
		}
	}
	return nil
}

// removeCgroups kills whatever runs in the node's cgroups and removes them, deepest first.
func (n *Node) removeCgroups() error {
	var errs []error
	for _, root := range n.cgroups {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var dirs []string
			_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, path)
				}
				return nil
			})
			left := 0
			for _, d := range dirs {
				procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
				for _, pid := range strings.Fields(string(procs)) {
					if p, err := strconv.Atoi(pid); err == nil {
						_ = syscall.Kill(p, syscall.SIGKILL)
						left++
					}
				}
			}
			if left == 0 {
				slices.Reverse(dirs) // children before parents
				for _, d := range dirs {
					if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
						errs = append(errs, err)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("%s: %d processes do not exit", root, left))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	n.cgroups = nil
	return errors.Join(errs...)
}

// run runs a command and returns its output in the error when it fails.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Process is a container's main process as the node's containerd runs it.
type Process struct {
	// Container is the container's id (a pod status's containerID without "containerd://").
	Container string
	PID       int
	// Command is the process's command line, read from /proc.
	Command string
}

// Processes lists the running containers' processes (pause sandboxes included), read from
// containerd and checked in /proc: they are real processes of this machine.
func (n *Node) Processes(ctx context.Context) ([]Process, error) {
	out, err := exec.CommandContext(ctx, "ctr", "--address", containerdSocket, "-n", "k8s.io", "tasks", "ls").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ctr tasks ls: %w: %s", err, out)
	}
	var procs []Process
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[2] != "RUNNING" {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return nil, fmt.Errorf("container %s: process %d: %w", fields[0], pid, err)
		}
		procs = append(procs, Process{
			Container: fields[0], PID: pid,
			Command: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")),
		})
	}
	return procs, nil
}
