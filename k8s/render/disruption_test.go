package main

import (
	"strconv"
	"testing"
)

// intAt is a number of a rendered object (YAML decodes it as int), -1 when absent.
func intAt(v any, path ...string) int {
	if n, ok := at(v, path...).(int); ok {
		return n
	}
	return -1
}

// envOr is a container's variable, or def when the manifest leaves it to the program.
func envOr(c map[string]any, name string, def int) int {
	if v := envValue(c, name); v != "" {
		d, err := strconv.Atoi(v[:len(v)-1]) // "8s"
		if err == nil && v[len(v)-1] == 's' {
			return d
		}
		return -1
	}
	return def
}

// A producer being stopped keeps serving while the load balancer takes it out of rotation: each
// container sleeps in preStop (Kubernetes' sleep action: our images have no shell) for at least
// the BackendConfig's connection draining, the gRPC pod's producer outlasts its front's own
// shutdown, and the grace period covers the longest sleep plus the producers' 10 s drain
// (docs/api.md), so the kubelet never kills a pod mid-request.
func TestProducersDrainBeforeTheyStop(t *testing.T) {
	objs := render(t, "MANIFEST_SRCS", nil)
	draining := intAt(find(t, objs, "BackendConfig", "votes"), "spec", "connectionDraining", "drainingTimeoutSec")
	if draining <= 0 {
		t.Fatal("the BackendConfig votes has no connection draining")
	}
	const shutdown = 10 // docs/api.md: a producer exits within 10 s of SIGTERM
	for _, name := range []string{"grpc-producer", "wasm-producer"} {
		d := find(t, objs, "Deployment", name)
		grace := intAt(d, "spec", "template", "spec", "terminationGracePeriodSeconds")
		sleeps := map[string]int{}
		for _, c := range list(d, "spec", "template", "spec", "containers") {
			cname := str(c, "name")
			if at(c, "lifecycle", "preStop", "exec") != nil {
				t.Errorf("%s/%s: a preStop exec, but the image has no shell", name, cname)
			}
			sleep := intAt(c, "lifecycle", "preStop", "sleep", "seconds")
			if sleep < draining {
				t.Errorf("%s/%s: preStop sleeps %d s, less than the load balancer's %d s of draining", name, cname, sleep, draining)
			}
			sleeps[cname] = sleep
			if grace < sleep+shutdown {
				t.Errorf("%s/%s: terminationGracePeriodSeconds %d < preStop %d s + %d s of shutdown", name, cname, grace, sleep, shutdown)
			}
		}
		if name == "grpc-producer" {
			front := container(t, d, "front")
			if sleeps["producer"] < sleeps["front"]+envOr(front, "SHUTDOWN_TIMEOUT", 8) {
				t.Errorf("grpc-producer: the producer's preStop (%d s) ends before the front has finished its requests (%d s + its shutdown timeout)",
					sleeps["producer"], sleeps["front"])
			}
		}
	}
}

// spread is the whenUnsatisfiable of a pod template's spread constraint on key ("" if none),
// and whether its selector picks the template's own pods.
func spread(t *testing.T, podSpec any, podLabels map[string]any, key string) (string, bool) {
	t.Helper()
	for _, c := range list(podSpec, "topologySpreadConstraints") {
		if str(c, "topologyKey") != key {
			continue
		}
		sel, _ := at(c, "labelSelector", "matchLabels").(map[string]any)
		own := len(sel) > 0
		for k, v := range sel {
			if podLabels[k] != v {
				own = false
			}
		}
		return str(c, "whenUnsatisfiable"), own
	}
	return "", false
}

// Three MongoDB members and three brokers each need a node of their own: with two on one node,
// that node's loss (or a GKE upgrade) takes a majority, so no primary for the consumer's
// w=majority writes, no KRaft quorum and no acks=all writes. The scheduler must refuse to place
// them otherwise (DoNotSchedule); zones are spread where there are several. Drains take one at a
// time.
func TestThreeMembersEachHaveANode(t *testing.T) {
	for _, n := range []int{1, 3} {
		objs := render(t, "MANIFEST_SRCS", func(s *Settings) { s.MongoDB.Members, s.Kafka.Brokers = n, n })
		want := "ScheduleAnyway"
		if n == 3 {
			want = "DoNotSchedule"
		}

		mongo := find(t, objs, "StatefulSet", "mongodb")
		labels, _ := at(mongo, "spec", "template", "metadata", "labels").(map[string]any)
		pod := at(mongo, "spec", "template", "spec")
		if got, own := spread(t, pod, labels, "kubernetes.io/hostname"); got != want || !own {
			t.Errorf("%d MongoDB members: spread per node %q (selects its own pods: %v), want %s", n, got, own, want)
		}
		if got, own := spread(t, pod, labels, "topology.kubernetes.io/zone"); got != "ScheduleAnyway" || !own {
			t.Errorf("%d MongoDB members: spread per zone %q (own pods: %v), want ScheduleAnyway", n, got, own)
		}
		pdb := find(t, objs, "PodDisruptionBudget", "mongodb")
		if intAt(pdb, "spec", "maxUnavailable") != 1 || str(pdb, "spec", "selector", "matchLabels", "app") != "mongodb" {
			t.Errorf("MongoDB's PodDisruptionBudget: %v", at(pdb, "spec"))
		}

		pool := find(t, objs, "KafkaNodePool", "dual-role")
		// Strimzi labels a pool's pods with the cluster and the pool.
		kafkaLabels := map[string]any{"strimzi.io/cluster": str(pool, "metadata", "labels", "strimzi.io/cluster"), "strimzi.io/pool-name": "dual-role"}
		kpod := at(pool, "spec", "template", "pod")
		if got, own := spread(t, kpod, kafkaLabels, "kubernetes.io/hostname"); got != want || !own {
			t.Errorf("%d brokers: spread per node %q (selects its own pods: %v), want %s", n, got, own, want)
		}
		if got, own := spread(t, kpod, kafkaLabels, "topology.kubernetes.io/zone"); got != "ScheduleAnyway" || !own {
			t.Errorf("%d brokers: spread per zone %q (own pods: %v), want ScheduleAnyway", n, got, own)
		}
		if got := intAt(find(t, objs, "Kafka", "tally"), "spec", "kafka", "template", "podDisruptionBudget", "maxUnavailable"); got != 1 {
			t.Errorf("Kafka's PodDisruptionBudget allows %d brokers down at once, want 1", got)
		}
	}
}
