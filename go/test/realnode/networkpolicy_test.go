package realnode_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/kubenode"
	"github.com/tally-voting/tally/go/test/runfile"
	"github.com/tally-voting/tally/k8s/render/connections"
)

// controlPort is where each probe takes the test's requests to connect (go/test/realnode/probe).
const controlPort = "9999"

// TestNetworkPolicies: the NetworkPolicies of the GKE render (//k8s:manifests), enforced on the
// real node by kube-router's firewall, admit every pod-to-pod connection of the table the render
// test computes (k8s/render/connections) and refuse the table's refused ones. Each end is a probe
// pod labelled as the workload it stands for, in that workload's namespace; DNS goes to the
// node's real CoreDNS (kube-dns) through its Service. The table's ends outside the cluster (the
// load balancer, Cloud Run, the VPC, the internet, NodeLocal DNS, the metadata server) have no
// counterpart on one node and are left to the render test, as the log lists.
func TestNetworkPolicies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e := start(t, ctx, runfile.Path(t, "KUBE_ROUTER"))

	table, err := connections.Load(runfile.Path(t, "CONNECTIONS"))
	if err != nil {
		t.Fatal(err)
	}
	pods, err := connections.Workloads(runfile.Path(t, "GKE_MANIFESTS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range table.Pods {
		pods[p.Name] = p
	}
	// kube-dns is the node's own CoreDNS, reached at its Service address.
	delete(pods, "kube-dns")
	const dns = "kube-dns"
	onNode := func(c connections.Conn) bool {
		_, from := pods[c.From]
		_, to := pods[c.To]
		return from && (to || c.To == dns)
	}
	var admitted, refused, outside []connections.Conn
	for _, c := range table.Admitted {
		if onNode(c) {
			admitted = append(admitted, c)
		} else {
			outside = append(outside, c)
		}
	}
	for _, c := range table.Refused {
		if onNode(c) {
			refused = append(refused, c)
		} else {
			outside = append(outside, c)
		}
	}
	if len(admitted) < 10 || len(refused) < 5 {
		t.Fatalf("only %d admitted and %d refused pod-to-pod connections in the table", len(admitted), len(refused))
	}

	// The render's namespaces, then its policies (a namespace just created may not admit objects
	// yet in the same apply), before any probe starts.
	gke := rendered{manifests: runfile.Path(t, "GKE_MANIFESTS")}
	e.kubectl("", "apply", "-f", e.only(gke, "Namespace").manifests)
	e.kubectl("", "apply", "-f", e.only(gke, "NetworkPolicy").manifests)
	images, err := kubenode.Push(ctx, runfile.Path(t, "PROBE_PUSH"), "tally-node")
	if err != nil {
		t.Fatal(err)
	}
	listen := map[string][]string{} // an end's ports, the ones it is connected to on
	for _, c := range append(admitted, refused...) {
		if p := strconv.Itoa(c.Port); c.To != dns && !slices.Contains(listen[c.To], p) {
			listen[c.To] = append(listen[c.To], p)
		}
	}
	var names []string
	for name, p := range pods {
		if !usedBy(name, admitted, refused) {
			continue
		}
		names = append(names, name)
		if _, err := e.cluster.Kubectl(ctx, "", "get", "namespace", p.Namespace); err != nil {
			e.kubectl("", "create", "namespace", p.Namespace)
		}
		e.kubectl(probePod(p, images["probe"], listen[name]), "apply", "-f", "-")
	}
	slices.Sort(names)
	ips := map[string]string{}
	for _, name := range names {
		p := pods[name]
		e.kubectl("", "wait", "--for=condition=Ready", "pod/probe-"+name, "-n", p.Namespace, "--timeout=3m")
		ips[name] = e.kubectl("", "get", "pod", "probe-"+name, "-n", p.Namespace, "-o", "jsonpath={.status.podIP}")
	}
	e.logf("%d probe pods Ready, labelled as %s", len(names), strings.Join(names, ", "))
	target := func(c connections.Conn) string {
		if c.To == dns {
			return net.JoinHostPort(kubenode.DNSIP, strconv.Itoa(c.Port))
		}
		return net.JoinHostPort(ips[c.To], strconv.Itoa(c.Port))
	}
	// connect reports whether c's connection was made; a probe that does not answer the test
	// fails it (it would otherwise pass for a refusal).
	connect := func(c connections.Conn) (bool, string) {
		connected, why, err := probeDial(ctx, ips[c.From], c.Protocol, target(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		return connected, why
	}

	// kube-router applies the policies as it learns of the pods: wait until a refused and an
	// admitted connection both say so, then check every one; one that does not yet is tried
	// again for up to a minute (the enforcer syncs each pod's rules on its own events).
	first, firstRefused := admitted[0], refused[0]
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
		okA, whyA := connect(first)
		okR, whyR := connect(firstRefused)
		if okA && !okR {
			break
		}
		select {
		case err := <-e.node.Exited():
			t.Fatalf("a node process exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes, %s: %s; %s: %s (want connected, then refused)", first, whyA, firstRefused, whyR)
		}
	}
	// The refusal must be the firewall's: each refused connection's target answers the node
	// (which the enforcer admits to its own pods, for the kubelet's probes).
	for _, c := range refused {
		if err := dialProbe(ctx, target(c)); err != nil {
			t.Errorf("%s: the target does not answer the node either, so its refusal proves nothing: %v", c, err)
		}
	}
	type check struct {
		conn connections.Conn
		want bool
	}
	var pending []check
	for _, c := range admitted {
		pending = append(pending, check{c, true})
	}
	for _, c := range refused {
		pending = append(pending, check{c, false})
	}
	retried := 0
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(3 * time.Second) {
		var wrong []check
		var whys []string
		for _, ch := range pending {
			if ok, why := connect(ch.conn); ok != ch.want {
				wrong, whys = append(wrong, ch), append(whys, why)
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for i, ch := range wrong {
				if ch.want {
					t.Errorf("admitted by the policies but not connected: %s (%s): %s", ch.conn, target(ch.conn), whys[i])
				} else {
					t.Errorf("refused by the policies but connected: %s (%s)", ch.conn, target(ch.conn))
				}
			}
			break
		}
		retried += len(wrong)
		pending = wrong
	}
	var skipped []string
	for _, c := range outside {
		skipped = append(skipped, c.String())
	}
	e.logf("NetworkPolicies enforced by kube-router: %d admitted connections connected, %d refused ones refused "+
		"(%d tries repeated); left to the render test (an end outside the cluster): %s",
		len(admitted), len(refused), retried, strings.Join(skipped, "; "))

	// kubectl logs through the API server (which reaches the kubelet at the node's InternalIP):
	// the probe logged each connection it was asked for.
	from := pods[first.From]
	logs := e.kubectl("", "logs", "probe-"+first.From, "-n", from.Namespace)
	if !strings.Contains(logs, "msg=dial") || !strings.Contains(logs, target(first)) {
		t.Errorf("kubectl logs probe-%s shows no dial to %s:\n%.2000s", first.From, target(first), logs)
	}
}

// usedBy reports whether an end takes part in any of the connections.
func usedBy(name string, lists ...[]connections.Conn) bool {
	for _, l := range lists {
		if slices.ContainsFunc(l, func(c connections.Conn) bool { return c.From == name || c.To == name }) {
			return true
		}
	}
	return false
}

// probePod is a probe pod standing for the workload p: its namespace and labels, listening on ports.
func probePod(p connections.Pod, image string, ports []string) string {
	labels, _ := json.Marshal(p.Labels)
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: probe-%s, namespace: %s, labels: %s}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: probe
    image: %q
    args: [-listen, %q, -control, ":%s"]
    readinessProbe:
      tcpSocket: {port: %s}
      periodSeconds: 1
    resources:
      requests: {cpu: 5m, memory: 16Mi}
      limits: {memory: 64Mi}
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`, p.Name, p.Namespace, labels, image, strings.Join(ports, ","), controlPort, controlPort)
}

// probeDial asks the probe at ip to connect to address: whether it connected, its answer, and
// an error when the probe itself could not be asked.
func probeDial(ctx context.Context, ip, protocol, address string) (bool, string, error) {
	u := "http://" + net.JoinHostPort(ip, controlPort) + "/dial?" + url.Values{"protocol": {protocol}, "address": {address}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "", fmt.Errorf("ask the probe at %s: %w", ip, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return false, "", fmt.Errorf("ask the probe at %s: HTTP %d, %v", ip, resp.StatusCode, err)
	}
	return string(body) == "connected", string(body), nil
}

// dialProbe connects from the test (the node) to a probe's listener, or a DNS server's port 53
// over TCP, and reports whether it answered.
func dialProbe(ctx context.Context, address string) error {
	conn, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", address)
	if err != nil {
		return err
	}
	defer conn.Close()
	if strings.HasSuffix(address, ":53") {
		return nil
	}
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "probe\n" {
		return fmt.Errorf("no probe answered at %s (%q, %v)", address, buf, err)
	}
	return nil
}
