package main

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/tally-voting/tally/go/test/runfile"
	"github.com/tally-voting/tally/k8s/render/connections"
)

// The test cluster accepts NetworkPolicies but does not enforce them, so this test computes what
// the rendered policies admit, with the semantics of the Kubernetes API (networking.k8s.io/v1):
// a pod selected by no policy of a direction is open in that direction; a selected pod admits
// what any selecting policy's rules admit; a rule with no peers or no ports matches all of
// them; podSelector alone means the policy's namespace, namespaceSelector alone every pod of the
// matching namespaces, both together the matching pods of those namespaces; ipBlock matches
// addresses outside the cluster's pods.

// endpoint is a party to a connection: a pod (namespace and labels) or an address outside.
type endpoint struct {
	name   string
	ns     string
	labels map[string]string
	ip     netip.Addr
}

func (e endpoint) pod() bool { return e.ns != "" }

type policy struct {
	ns              string
	selector        any
	ingress, egress bool
	in, out         []any // the rules
}

type cluster struct {
	namespaces map[string]map[string]string
	policies   []policy
	pods       map[string]endpoint
}

// newCluster reads the namespaces, policies and pod templates of the rendered objects and adds
// the pods Tally's manifests do not make but talks to (the table's: kube-dns, Strimzi's, Kafka's).
func newCluster(t *testing.T, objs []obj, table connections.Table) cluster {
	t.Helper()
	c := cluster{namespaces: map[string]map[string]string{}, pods: map[string]endpoint{}}
	addNS := func(name string, labels map[string]string) {
		l := map[string]string{"kubernetes.io/metadata.name": name}
		for k, v := range labels {
			l[k] = v
		}
		c.namespaces[name] = l
	}
	addNS("kube-system", nil)
	for _, o := range objs {
		ns := str(o, "metadata", "namespace")
		switch str(o, "kind") {
		case "Namespace":
			addNS(str(o, "metadata", "name"), stringMap(at(o, "metadata", "labels")))
		case "NetworkPolicy":
			p := policy{ns: ns, selector: at(o, "spec", "podSelector"), in: list(o, "spec", "ingress"), out: list(o, "spec", "egress")}
			types := list(o, "spec", "policyTypes")
			p.ingress = len(types) == 0 || slices.Contains(types, any("Ingress"))
			p.egress = slices.Contains(types, any("Egress")) || len(types) == 0 && p.out != nil
			c.policies = append(c.policies, p)
		default:
			if pod, ok := connections.WorkloadPod(o); ok {
				c.pods[pod.Name] = endpoint{name: pod.Name, ns: pod.Namespace, labels: pod.Labels}
			}
		}
	}
	for _, p := range table.Pods {
		c.pods[p.Name] = endpoint{name: p.Name, ns: p.Namespace, labels: p.Labels}
	}
	return c
}

func stringMap(v any) map[string]string {
	m := map[string]string{}
	if in, ok := v.(map[string]any); ok {
		for k, v := range in {
			m[k] = fmt.Sprint(v)
		}
	}
	return m
}

// selects reports whether a label selector (matchLabels, matchExpressions) matches labels; an
// empty selector matches everything.
func selects(selector any, labels map[string]string) bool {
	for k, v := range stringMap(at(selector, "matchLabels")) {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range list(selector, "matchExpressions") {
		value, has := labels[str(e, "key")]
		var values []string
		for _, v := range list(e, "values") {
			values = append(values, fmt.Sprint(v))
		}
		ok := map[string]bool{
			"In":           has && slices.Contains(values, value),
			"NotIn":        !has || !slices.Contains(values, value),
			"Exists":       has,
			"DoesNotExist": !has,
		}[str(e, "operator")]
		if !ok {
			return false
		}
	}
	return true
}

// peerMatches: does one from/to entry of a policy in namespace ns match e?
func (c cluster) peerMatches(peer any, ns string, e endpoint) bool {
	if block := at(peer, "ipBlock"); block != nil {
		if e.pod() {
			return false
		}
		cidr := netip.MustParsePrefix(str(block, "cidr"))
		for _, ex := range list(block, "except") {
			if netip.MustParsePrefix(fmt.Sprint(ex)).Contains(e.ip) {
				return false
			}
		}
		return cidr.Contains(e.ip)
	}
	if !e.pod() {
		return false
	}
	podSel, nsSel := at(peer, "podSelector"), at(peer, "namespaceSelector")
	if nsSel == nil && e.ns != ns {
		return false
	}
	if nsSel != nil && !selects(nsSel, c.namespaces[e.ns]) {
		return false
	}
	return podSel == nil || selects(podSel, e.labels)
}

func portMatches(rule any, proto string, port int) bool {
	ports := list(rule, "ports")
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		wantProto := str(p, "protocol")
		if wantProto == "" {
			wantProto = "TCP"
		}
		if wantProto == proto && (at(p, "port") == nil || at(p, "port") == port) {
			return true
		}
	}
	return false
}

// side checks one direction at pod: admitted when no policy of that direction selects it, or a
// rule of one that does matches the other end and the port.
func (c cluster) side(pod, other endpoint, ingress bool, proto string, port int) bool {
	if !pod.pod() {
		return true // outside the cluster, no policy applies
	}
	selected := false
	for _, p := range c.policies {
		if p.ns != pod.ns || !selects(p.selector, pod.labels) || (ingress && !p.ingress) || (!ingress && !p.egress) {
			continue
		}
		selected = true
		rules, peersKey := p.out, "to"
		if ingress {
			rules, peersKey = p.in, "from"
		}
		for _, r := range rules {
			peers := list(r, peersKey)
			if !portMatches(r, proto, port) {
				continue
			}
			if len(peers) == 0 || slices.ContainsFunc(peers, func(peer any) bool { return c.peerMatches(peer, p.ns, other) }) {
				return true
			}
		}
	}
	return !selected
}

func (c cluster) admits(from, to endpoint, proto string, port int) bool {
	return c.side(from, to, false, proto, port) && c.side(to, from, true, proto, port)
}

func TestNetworkPoliciesAdmitWhatTallyNeedsAndNothingElse(t *testing.T) {
	objs := render(t, "MANIFEST_SRCS", nil)
	table, err := connections.Load(runfile.Path(t, "CONNECTIONS"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, objs, table)
	settings, err := LoadSettings(runfile.Path(t, "SETTINGS"))
	if err != nil {
		t.Fatal(err)
	}
	// The addresses outside the cluster the table names.
	cloudRun := netip.MustParsePrefix(settings.CloudRun.EgressRange).Addr().Next()
	outside := func(name, ip string) endpoint { return endpoint{name: name, ip: netip.MustParseAddr(ip)} }
	ends := map[string]endpoint{
		"node-local-dns":  outside("node-local-dns", "169.254.20.10"),
		"metadata-server": outside("metadata-server", "169.254.169.254"),
		"cloud-run":       {name: "cloud-run", ip: cloudRun},
		// The external load balancer's proxies reach NEG backends from Google's ranges.
		"load-balancer":  outside("load-balancer", "35.191.0.10"),
		"vpc-elsewhere":  outside("vpc-elsewhere", "10.128.0.7"),
		"plugin-catalog": outside("plugin-catalog", "34.117.1.1"),
		"kube-apiserver": outside("kube-apiserver", "34.1.2.3"),
	}
	for name, p := range c.pods {
		ends[name] = p
	}
	end := func(name string) endpoint {
		e, ok := ends[name]
		if !ok {
			t.Fatalf("no pod or address %q (the rendered workloads: %v)", name, keys(c.pods))
		}
		return e
	}

	for _, cn := range table.Admitted {
		if !c.admits(end(cn.From), end(cn.To), cn.Protocol, cn.Port) {
			t.Errorf("needed but refused: %s", cn)
		}
	}
	for _, cn := range table.Refused {
		if c.admits(end(cn.From), end(cn.To), cn.Protocol, cn.Port) {
			t.Errorf("needed by nothing but admitted: %s", cn)
		}
	}
	// Every namespace of Tally's workloads denies by default: a policy with no rules selects all.
	for ns := range c.namespaces {
		if ns == "kube-system" || ns == "strimzi" {
			continue
		}
		if !slices.ContainsFunc(c.policies, func(p policy) bool {
			return p.ns == ns && p.ingress && p.egress && len(p.in) == 0 && len(p.out) == 0 && selects(p.selector, map[string]string{"any": "pod"})
		}) {
			t.Errorf("namespace %s has no default-deny policy", ns)
		}
	}
}

func keys(m map[string]endpoint) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}
