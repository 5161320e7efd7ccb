package kubenode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// insideEnv marks the re-executed test binary that runs inside the namespaces Main made.
const insideEnv = "TALLY_KUBENODE_INSIDE"

// Main runs a test binary's tests inside a network and mount namespace of their own, for
// TestMain: os.Exit(kubenode.Main(m)).
//
// Why: a kubelet, kube-proxy and the CNI bridge rewrite iptables, forwarding and bridge settings
// and create interfaces and routes. In a fresh network namespace all of that (and every pod and
// Service address) exists only for the test and disappears with it; in a private mount namespace
// the node's mounts (container roots, volumes, the stand-ins for kernel settings the kubelet
// checks, see Start) are never seen by the machine. The machine's kernel settings are read
// (`sysctl -a`, as seen from the machine's network namespace) before and after: any difference,
// apart from counters the kernel changes by itself, fails the run.
func Main(m *testing.M) int {
	// The node's tools (sysctl, ip, iptables, runc, conntrack) live in sbin, which Bazel's
	// strict test environment leaves off PATH; containerd, the kubelet and kube-proxy look them up.
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if !slices.Contains(filepath.SplitList(os.Getenv("PATH")), dir) {
			os.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+dir)
		}
	}
	if os.Getenv(insideEnv) == "1" {
		if err := enterNamespaces(); err != nil {
			fmt.Fprintf(os.Stderr, "kubenode: set up the test's namespaces: %v\n", err)
			return 1
		}
		return m.Run()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "kubenode: a real node needs root (namespaces, cgroups, containers): run under tools/bazel test")
		return 1
	}
	before, err := Sysctls()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubenode: %v\n", err)
		return 1
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), insideEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "kubenode: run the tests in new namespaces: %v\n", err)
			return 1
		}
		code = exit.ExitCode()
		if code < 0 {
			code = 1
		}
	}
	after, err := Sysctls()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubenode: %v\n", err)
		return 1
	}
	if diff := SysctlDiff(before, after); len(diff) > 0 {
		fmt.Fprintf(os.Stderr, "kubenode: FAIL: the machine's kernel settings changed during the test:\n  %s\n", strings.Join(diff, "\n  "))
		return 1
	}
	fmt.Fprintf(os.Stderr, "kubenode: the machine's %d kernel settings are the same after the test as before it\n", len(before))
	return code
}

// volatile are the entries of `sysctl -a` that the kernel changes by itself (counters, random
// values): they are not settings, so they are left out of the comparison.
var volatile = []string{
	"fs.dentry-state", "fs.file-nr", "fs.inode-nr", "fs.inode-state", "fs.aio-nr",
	"fs.quota.", "kernel.ns_last_pid", "kernel.pty.nr", "kernel.random.",
	"net.netfilter.nf_conntrack_count", "kernel.sched_domain.", "net.ipv4.tcp_fastopen_key",
	"fs.binfmt_misc.", "kernel.perf_event_max_sample_rate", "kernel.softlockup_",
}

// Sysctls reads every kernel setting as `sysctl -a` shows it from this process's namespaces.
func Sysctls() (map[string]string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command("sysctl", "-a")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// sysctl exits non-zero when a few entries cannot be read (write-only ones): what it printed
	// is still the full set of readable settings.
	if err := cmd.Run(); err != nil && out.Len() == 0 {
		return nil, fmt.Errorf("sysctl -a: %w: %s", err, errOut.String())
	}
	settings := map[string]string{}
	for line := range strings.Lines(out.String()) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			name, value = strings.TrimSuffix(strings.TrimSpace(line), " ="), ""
		}
		if slices.ContainsFunc(volatile, func(v string) bool { return strings.HasPrefix(name, v) }) {
			continue
		}
		settings[name] = value
	}
	if len(settings) < 100 {
		return nil, fmt.Errorf("sysctl -a printed only %d settings: %s", len(settings), errOut.String())
	}
	return settings, nil
}

// SysctlDiff lists the settings that differ between two snapshots, sorted.
func SysctlDiff(before, after map[string]string) []string {
	var diff []string
	for name, was := range before {
		if now, ok := after[name]; !ok {
			diff = append(diff, fmt.Sprintf("%s = %s, now gone", name, was))
		} else if now != was {
			diff = append(diff, fmt.Sprintf("%s = %s, now %s", name, was, now))
		}
	}
	for name, now := range after {
		if _, ok := before[name]; !ok {
			diff = append(diff, fmt.Sprintf("%s is new: %s", name, now))
		}
	}
	sort.Strings(diff)
	return diff
}

// enterNamespaces prepares the fresh namespaces this process was started in: mounts stop
// propagating to the machine's, and the network has its loopback up and one node address.
func enterNamespaces() error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make every mount private: %w", err)
	}
	// /run holds containerd's and the shims' sockets and the pods' network namespaces: a tmpfs
	// of this namespace only, gone with it.
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount a private /run: %w", err)
	}
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		// The node's address, so that the node has an IP that pods reach (the API server listens
		// there) and a default route for Service addresses. A veth pair with both ends here:
		// this kernel has no dummy interfaces and loads no modules.
		{"ip", "link", "add", "node0", "type", "veth", "peer", "name", "node0-peer"},
		{"ip", "link", "set", "node0-peer", "up"},
		{"ip", "addr", "add", NodeIP + "/24", "dev", "node0"},
		{"ip", "link", "set", "node0", "up"},
		{"ip", "route", "add", "default", "dev", "node0"},
	}
	for _, step := range steps {
		if out, err := exec.Command(step[0], step[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(step, " "), err, out)
		}
	}
	// Routing between the pods' bridge and the node: this namespace's own setting.
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
}
