// Package kubecluster starts a throwaway Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok with one fake node, all on
// free loopback ports under one directory. kwok plays the kubelet: it marks scheduled pods
// Running and Ready, so Deployments roll out without containers ever running.
//
// The binaries are not built per test: tools/kube/provision.sh builds them once per machine and
// the @kube_binaries repository exposes them (tools/kube/README.md).
package kubecluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tally-voting/tally/go/internal/stack"
)

// Config says where the binaries are and where the cluster keeps its state.
type Config struct {
	// Bin holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.
	Bin string
	// Stages holds kwok's Stage configs (node/… and pod/… folders of YAML files).
	Stages string
	// Dir receives etcd's data, keys, the kubeconfig and logs; a test's temp dir.
	Dir string
	// Log receives every process's output, one prefixed line at a time.
	Log io.Writer
	// Address is where the API server listens and what it advertises; 127.0.0.1 when empty.
	// A real node's pods reach the API server there (go/internal/kubenode's NodeIP).
	Address string
	// RealNode leaves kwok and its fake node out: a real kubelet (go/internal/kubenode) joins
	// instead, and Start returns without waiting for any node.
	RealNode bool
}

// FromRunfiles fills Bin and Stages from $KUBE_BIN and $KUBE_STAGES, runfiles paths of
// @kube_binaries//:bin and :stages (a test's env: "$(rlocationpath @kube_binaries//:bin)").
func (c Config) FromRunfiles() (Config, error) {
	root := os.Getenv("RUNFILES_DIR")
	if root == "" {
		root = os.Getenv("TEST_SRCDIR")
	}
	bin, stages := os.Getenv("KUBE_BIN"), os.Getenv("KUBE_STAGES")
	if root == "" || bin == "" || stages == "" {
		return c, errors.New("KUBE_BIN, KUBE_STAGES and the runfiles directory must be set (run under bazel test)")
	}
	c.Bin, c.Stages = filepath.Join(root, bin), filepath.Join(root, stages)
	return c, nil
}

// NodeName is the fake node kwok manages; every pod is scheduled onto it.
const NodeName = "kwok-node-0"

// Cluster is a running control plane.
type Cluster struct {
	// Kubeconfig is a kubeconfig file with cluster-admin rights.
	Kubeconfig string
	// Server is the API server's URL.
	Server string
	token  string
	client *http.Client
	stack  *stack.Stack
}

// Start starts the control plane and returns once the fake node is Ready (at once with RealNode).
// Stop it with Stop.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	address := cfg.Address
	if address == "" {
		address = "127.0.0.1"
	}
	c := &Cluster{
		Kubeconfig: filepath.Join(cfg.Dir, "kubeconfig"),
		Server:     "https://" + net.JoinHostPort(address, strconv.Itoa(apiPort)),
	}
	if err := c.writeCredentials(cfg.Dir); err != nil {
		return nil, err
	}
	bin := func(name string) string { return filepath.Join(cfg.Bin, name) }
	loop := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	etcdURL := "http://" + loop(etcdClient)
	peerURL := "http://" + loop(etcdPeer)
	certDir := filepath.Join(cfg.Dir, "certs")
	kube := []string{"--kubeconfig=" + c.Kubeconfig}
	apiserver := []string{bin("kube-apiserver"), "--etcd-servers=" + etcdURL,
		"--bind-address=" + address, "--advertise-address=" + address,
		"--secure-port=" + strconv.Itoa(apiPort), "--cert-dir=" + certDir,
		"--token-auth-file=" + filepath.Join(cfg.Dir, "tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(cfg.Dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(cfg.Dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16", "--v=0"}
	if cfg.RealNode {
		// The API server reaches the kubelet (logs, exec, port-forward) at the node's registered
		// InternalIP, as GKE's does: the node's name resolves nowhere, and the default order
		// tries it first.
		apiserver = append(apiserver, "--kubelet-preferred-address-types=InternalIP")
	}
	procs := []stack.Process{
		{
			Name: "etcd",
			Args: []string{bin("etcd"), "--name=default", "--data-dir=" + filepath.Join(cfg.Dir, "etcd"),
				"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
				"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
				"--initial-cluster=default=" + peerURL,
				// A test cluster's data is thrown away: skipping fsync makes writes cheap.
				"--unsafe-no-fsync", "--log-level=warn"},
			Ready: func(ctx context.Context) error { return stack.HTTPOK(ctx, etcdURL+"/health") },
		},
		{
			Name:  "kube-apiserver",
			Needs: []string{"etcd"},
			Args:  apiserver,
			Ready: func(ctx context.Context) error { return c.get(ctx, "/readyz", nil) },
		},
		{
			Name:  "kube-controller-manager",
			Needs: []string{"kube-apiserver"},
			Args: append([]string{bin("kube-controller-manager"),
				"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
				"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(kcmPort),
				"--cert-dir=" + filepath.Join(cfg.Dir, "kcm-certs"), "--leader-elect=false",
				"--service-account-private-key-file=" + filepath.Join(cfg.Dir, "sa.key"),
				"--root-ca-file=" + filepath.Join(certDir, "apiserver.crt"),
				"--use-service-account-credentials=false", "--v=0"}, kube...),
			Ready: func(ctx context.Context) error { return insecureOK(ctx, "https://"+loop(kcmPort)+"/healthz") },
		},
		{
			Name:  "kube-scheduler",
			Needs: []string{"kube-apiserver"},
			Args: append([]string{bin("kube-scheduler"),
				"--authentication-kubeconfig=" + c.Kubeconfig, "--authorization-kubeconfig=" + c.Kubeconfig,
				"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(schedPort),
				"--cert-dir=" + filepath.Join(cfg.Dir, "scheduler-certs"), "--leader-elect=false", "--v=0"}, kube...),
			Ready: func(ctx context.Context) error { return insecureOK(ctx, "https://"+loop(schedPort)+"/healthz") },
		},
	}
	if !cfg.RealNode {
		stages, err := kwokStages(cfg.Stages)
		if err != nil {
			return nil, err
		}
		procs = append(procs, stack.Process{
			Name:  "kwok",
			Needs: []string{"kube-apiserver"},
			Args: append(append([]string{bin("kwok"),
				"--manage-all-nodes=false",
				"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
				"--server-address=" + loop(kwokPort),
				"--cidr=10.244.0.0/16", "--node-ip=10.0.0.1"}, kube...), stages...),
			Setup: c.createNode,
			Ready: c.nodeReady,
		})
	}
	s, err := stack.Start(ctx, cfg.Log, procs)
	if err != nil {
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	c.stack = s
	return c, nil
}

// Stop stops the processes in reverse start order: kube-apiserver exits at once only while
// etcd still answers (after etcd it waits about a minute), so etcd goes last.
func (c *Cluster) Stop() {
	c.stack.Stop()
}

// Exited reports a process of the cluster that exits without being asked to.
func (c *Cluster) Exited() <-chan error { return c.stack.Exited() }

// writeCredentials writes the admin token, the service-account signing key and the kubeconfig.
func (c *Cluster) writeCredentials(dir string) error {
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("make a token: %w", err)
	}
	c.token = hex.EncodeToString(buf)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("make the service-account key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, c.Server, c.token)
	files := map[string]string{
		"tokens.csv": c.token + `,admin,admin,"system:masters"` + "\n",
		"sa.key":     string(keyPEM),
		"kubeconfig": kubeconfig,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	// The API server's certificate is self-signed and made at start: the test trusts the
	// loopback server it started, so checks skip verification like the kubeconfig does.
	c.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return nil
}

// kwokStages lists kwok's --config flags: the fast node and general pod Stages.
func kwokStages(dir string) ([]string, error) {
	var flags []string
	for _, sub := range []string{"node/fast", "node/heartbeat", "pod/general"} {
		files, err := filepath.Glob(filepath.Join(dir, sub, "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if filepath.Base(f) != "kustomization.yaml" {
				flags = append(flags, "--config="+f)
			}
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no kwok Stage configs under %s", dir)
	}
	return flags, nil
}

// createNode registers the fake node: big enough for every manifest's requests.
func (c *Cluster) createNode(ctx context.Context) error {
	node := map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name":        NodeName,
			"annotations": map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			"labels": map[string]string{
				"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok",
			},
		},
		"status": map[string]any{
			"allocatable": map[string]string{"cpu": "64", "memory": "256Gi", "pods": "200", "ephemeral-storage": "1Ti"},
			"capacity":    map[string]string{"cpu": "64", "memory": "256Gi", "pods": "200", "ephemeral-storage": "1Ti"},
		},
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/nodes", node, nil)
	var status *statusError
	if errors.As(err, &status) && status.code == http.StatusConflict {
		return nil // a restarted kwok finds its node
	}
	return err
}

// nodeReady is nil once kwok has reported the fake node Ready.
func (c *Cluster) nodeReady(ctx context.Context) error {
	var node struct {
		Status struct {
			Conditions []struct{ Type, Status string } `json:"conditions"`
		} `json:"status"`
	}
	if err := c.get(ctx, "/api/v1/nodes/"+NodeName, &node); err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == "Ready" && cond.Status == "True" {
			return nil
		}
	}
	return fmt.Errorf("node %s is not Ready yet", NodeName)
}

func (c *Cluster) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

// do calls the API server as the admin user, sending and decoding JSON.
func (c *Cluster) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w", method, path, &statusError{resp.StatusCode, strings.TrimSpace(string(data))})
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// insecureOK is a GET that must answer 200 from a component's self-signed /healthz.
func insecureOK(ctx context.Context, url string) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return stack.ClientOK(ctx, client, url)
}

// freePorts returns n loopback ports that were free a moment ago, all different.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Kubectl runs the toolchain's kubectl against the cluster and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// InstallCRDs applies the CustomResourceDefinitions in a YAML file and waits until each serves.
func (c *Cluster) InstallCRDs(ctx context.Context, file string) error {
	// Server-side: large CRDs exceed client-side apply's annotation limit.
	out, err := c.Kubectl(ctx, "", "apply", "--server-side", "-f", file, "-o", "name")
	if err != nil {
		return err
	}
	names := strings.Fields(out)
	// Polled rather than `kubectl wait`, which fails on a CRD whose status is not written yet.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range names {
		for {
			out, err := c.Kubectl(ctx, "", "get", name, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
			if err == nil && out == "True" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s is not Established: %v %s", name, err, out)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// AddVolumes stands in for a StorageClass provisioner: a real cluster makes StatefulSets'
// volumes from its default StorageClass, this one has none, so it offers n PersistentVolumes of
// 100Gi that the controller-manager binds to claims. Nothing is ever written to them.
func (c *Cluster) AddVolumes(ctx context.Context, n int) error {
	var docs []string
	for i := range n {
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: test-pv-%d}
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /nonexistent/test-pv-%d}`, i, i))
	}
	_, err := c.Kubectl(ctx, strings.Join(docs, "\n---\n"), "apply", "--server-side", "-f", "-")
	return err
}
