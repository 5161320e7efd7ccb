package main

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/tally-voting/tally/go/test/runfile"
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
// the pods Tally's manifests do not make but talks to (kube-dns, Strimzi's, Kafka's).
func newCluster(t *testing.T, objs []obj) cluster {
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
		case "Deployment", "StatefulSet", "Job":
			name := str(o, "metadata", "name")
			c.pods[name] = endpoint{name: name, ns: ns, labels: stringMap(at(o, "spec", "template", "metadata", "labels"))}
		case "CronJob":
			name := str(o, "metadata", "name")
			c.pods[name] = endpoint{name: name, ns: ns, labels: stringMap(at(o, "spec", "jobTemplate", "spec", "template", "metadata", "labels"))}
		}
	}
	for _, p := range []endpoint{
		{name: "kube-dns", ns: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}},
		// Strimzi's pods, labelled as Strimzi labels them.
		{name: "kafka-broker", ns: "tally-kafka", labels: map[string]string{"strimzi.io/cluster": "tally", "strimzi.io/kind": "Kafka", "strimzi.io/name": "tally-kafka", "strimzi.io/pool-name": "dual-role"}},
		{name: "entity-operator", ns: "tally-kafka", labels: map[string]string{"strimzi.io/cluster": "tally", "strimzi.io/kind": "Kafka", "strimzi.io/name": "tally-entity-operator"}},
		{name: "strimzi-operator", ns: "strimzi", labels: map[string]string{"name": "strimzi-cluster-operator", "strimzi.io/kind": "cluster-operator"}},
		// A pod Tally does not know, in its own namespace.
		{name: "stranger", ns: "tally", labels: map[string]string{"app": "stranger"}},
	} {
		c.pods[p.name] = p
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
	c := newCluster(t, objs)
	settings, err := LoadSettings(runfile.Path(t, "SETTINGS"))
	if err != nil {
		t.Fatal(err)
	}
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

	type conn struct {
		from, to, proto string
		port            int
	}
	need := []conn{
		{"load-balancer", "grpc-producer", "TCP", 8080},
		{"load-balancer", "wasm-producer", "TCP", 8081},
		{"grpc-producer", "kafka-broker", "TCP", 9092},
		{"wasm-producer", "kafka-broker", "TCP", 9092},
		{"consumer", "kafka-broker", "TCP", 9092},
		{"consumer", "redis", "TCP", 6379},
		{"consumer", "mongodb", "TCP", 27017},
		{"grafana", "redis", "TCP", 6379},
		{"grafana", "plugin-catalog", "TCP", 443},
		{"cloud-run", "redis", "TCP", 6379},
		{"cloud-run", "mongodb", "TCP", 27017},
		{"mongodb", "mongodb", "TCP", 27017},
		{"mongodb-setup", "mongodb", "TCP", 27017},
		{"audit", "redis", "TCP", 6379},
		{"audit", "mongodb", "TCP", 27017},
		{"kafka-broker", "kafka-broker", "TCP", 9091},
		{"kafka-broker", "kafka-broker", "TCP", 9090},
		{"strimzi-operator", "kafka-broker", "TCP", 9091},
		{"entity-operator", "kube-apiserver", "TCP", 443},
	}
	// Every pod resolves names through each of GKE's DNS paths, over UDP and TCP.
	for _, name := range []string{"grpc-producer", "wasm-producer", "consumer", "audit", "redis", "mongodb", "mongodb-setup", "grafana", "kafka-broker", "entity-operator"} {
		for _, dns := range []string{"kube-dns", "node-local-dns", "metadata-server"} {
			need = append(need, conn{name, dns, "UDP", 53}, conn{name, dns, "TCP", 53})
		}
	}
	refuse := []conn{
		{"load-balancer", "grpc-producer", "TCP", 9101}, // the gRPC producer's metrics
		{"load-balancer", "grafana", "TCP", 3000},       // Grafana is opened by port-forward only
		{"load-balancer", "redis", "TCP", 6379},
		{"cloud-run", "grafana", "TCP", 3000},
		{"cloud-run", "kafka-broker", "TCP", 9092},
		{"cloud-run", "mongodb", "TCP", 27018},
		{"vpc-elsewhere", "redis", "TCP", 6379},
		{"vpc-elsewhere", "mongodb", "TCP", 27017},
		{"stranger", "redis", "TCP", 6379},
		{"stranger", "mongodb", "TCP", 27017},
		{"stranger", "kafka-broker", "TCP", 9092},
		{"grpc-producer", "redis", "TCP", 6379},
		{"wasm-producer", "mongodb", "TCP", 27017},
		{"grafana", "mongodb", "TCP", 27017},
		{"grafana", "kafka-broker", "TCP", 9092},
		{"mongodb-setup", "redis", "TCP", 6379},
		{"audit", "kafka-broker", "TCP", 9092},
		{"audit", "plugin-catalog", "TCP", 443},
		{"consumer", "plugin-catalog", "TCP", 443},
		{"redis", "plugin-catalog", "TCP", 443},
		{"mongodb", "redis", "TCP", 6379},
		{"grafana", "vpc-elsewhere", "TCP", 443}, // the internet, not the VPC
		{"consumer", "vpc-elsewhere", "UDP", 53}, // DNS only where GKE answers it
	}
	for _, cn := range need {
		if !c.admits(end(cn.from), end(cn.to), cn.proto, cn.port) {
			t.Errorf("needed but refused: %s → %s %s/%d", cn.from, cn.to, cn.proto, cn.port)
		}
	}
	for _, cn := range refuse {
		if c.admits(end(cn.from), end(cn.to), cn.proto, cn.port) {
			t.Errorf("needed by nothing but admitted: %s → %s %s/%d", cn.from, cn.to, cn.proto, cn.port)
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
