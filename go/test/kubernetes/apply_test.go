// Package kubernetes_test applies Tally's rendered manifests with //k8s:apply's own script to a
// real Kubernetes API server (etcd, kube-apiserver, controller-manager, scheduler, and kwok
// standing in for kubelets), with Strimzi's CRDs installed, and checks what the cluster made of
// them.
package kubernetes_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/kubecluster"
)

func runfile(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("$%s is not set (run under bazel test)", env)
	}
	return filepath.Join(os.Getenv("TEST_SRCDIR"), p)
}

type cluster struct {
	t    *testing.T
	ctx  context.Context
	c    *kubecluster.Cluster
	logs *bytes.Buffer
}

func (k *cluster) kubectl(stdin string, args ...string) (string, error) {
	return k.c.Kubectl(k.ctx, stdin, args...)
}

func (k *cluster) must(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.kubectl(stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func startCluster(t *testing.T, ctx context.Context) *cluster {
	t.Helper()
	var logs bytes.Buffer
	cfg, err := kubecluster.Config{Dir: t.TempDir(), Log: &logs}.FromRunfiles()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	c, err := kubecluster.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	t.Logf("control plane ready in %v", time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("control plane logs (last 8 KiB):\n%s", tail(logs.String(), 8<<10))
		}
	})
	return &cluster{t: t, ctx: ctx, c: c, logs: &logs}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// apply runs k8s/apply.sh, the script behind //k8s:apply and //k8s:diff.
func (k *cluster) apply(mode string) string {
	k.t.Helper()
	args := []string{runfile(k.t, "APPLY"), mode, runfile(k.t, "MANIFESTS"), runfile(k.t, "REFS"),
		"unused", "--kubeconfig", k.c.Kubeconfig}
	if mode == "apply" {
		// kwok nodes never pull: there is no registry to push to.
		args = append(args, "--skip-push", "--timeout", "120s")
	}
	cmd := exec.CommandContext(k.ctx, "bash", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("k8s/apply.sh %s: %v\n%s", mode, err, out)
	}
	return string(out)
}

func TestApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	k := startCluster(t, ctx)
	if err := k.c.InstallCRDs(ctx, runfile(t, "STRIMZI_CRDS")); err != nil {
		t.Fatalf("Strimzi's CRDs are needed to validate the Kafka resources: %v", err)
	}
	// The StatefulSets' claims (Redis, MongoDB): a real cluster's StorageClass makes volumes.
	if err := k.c.AddVolumes(ctx, 2); err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	out := k.apply("apply")
	t.Logf("k8s/apply.sh apply took %v:\n%s", time.Since(started).Round(time.Millisecond), tail(out, 4<<10))

	t.Run("every manifest is accepted", func(t *testing.T) {
		rendered, err := os.ReadFile(runfile(t, "MANIFESTS"))
		if err != nil {
			t.Fatal(err)
		}
		want := len(regexp.MustCompile(`(?m)^kind: `).FindAll(rendered, -1))
		got := strings.Fields(k.must("", "get", "-f", runfile(t, "MANIFESTS"), "-o", "name"))
		if len(got) != want || want < 40 {
			t.Errorf("the cluster has %d of the %d rendered objects: %v", len(got), want, got)
		}
	})

	t.Run("workloads roll out", func(t *testing.T) {
		for _, w := range []struct {
			kind, ns, name string
			replicas       string
		}{
			{"deployment", "tally", "grpc-producer", "2"},
			{"deployment", "tally", "wasm-producer", "2"},
			{"deployment", "tally", "api", "2"},
			{"deployment", "tally", "web", "2"},
			{"deployment", "tally-monitoring", "grafana", "1"},
			{"statefulset", "tally-data", "redis", "1"},
			{"statefulset", "tally-data", "mongodb", "1"},
		} {
			got := k.must("", "get", w.kind, w.name, "-n", w.ns, "-o", "jsonpath={.spec.replicas} {.status.readyReplicas}")
			if got != w.replicas+" "+w.replicas {
				t.Errorf("%s %s/%s: replicas and ready replicas = %q, want %s ready", w.kind, w.ns, w.name, got, w.replicas)
			}
		}
		// kwok marks containers ready only once the scheduler has placed the pod on its node.
		pods := k.must("", "get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{\"\\n\"}{end}")
		for _, line := range strings.Split(strings.TrimSpace(pods), "\n") {
			if line != kubecluster.NodeName+" Running" {
				t.Errorf("a pod is %q, want Running on %s", line, kubecluster.NodeName)
			}
		}
	})

	t.Run("consumer autoscales from 2 to 5", func(t *testing.T) {
		// The Deployment leaves its replicas to the HPA, which raises them to its minimum (the
		// controller-manager syncs HPAs every 15 s; no metrics are needed for the minimum).
		var got string
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			got = k.must("", "get", "deployment", "consumer", "-n", "tally", "-o", "jsonpath={.spec.replicas} {.status.readyReplicas}")
			if got == "2 2" {
				break
			}
		}
		if got != "2 2" {
			t.Errorf("consumer replicas and ready replicas = %q, want the HPA's minimum 2 ready", got)
		}

		got = k.must("", "get", "hpa", "consumer", "-n", "tally", "-o",
			"jsonpath={.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name} {.spec.minReplicas} {.spec.maxReplicas}")
		if got != "Deployment/consumer 2 5" {
			t.Errorf("HPA = %q, want Deployment/consumer 2 5", got)
		}
	})

	t.Run("Strimzi resources", func(t *testing.T) {
		got := k.must("", "get", "kafkatopics", "-n", "tally-kafka", "-o",
			"jsonpath={range .items[*]}{.metadata.name}={.spec.topicName}/{.spec.partitions} {end}")
		if got != "votes=/6 votes-dlq=votes.dlq/1 " {
			t.Errorf("KafkaTopics = %q, want votes with 6 partitions and votes.dlq", got)
		}
		if got := k.must("", "get", "kafkanodepool", "dual-role", "-n", "tally-kafka", "-o", "jsonpath={.spec.roles}"); got != `["controller","broker"]` {
			t.Errorf("KafkaNodePool roles = %s, want controller and broker (KRaft)", got)
		}
		k.must("", "get", "kafka", "tally", "-n", "tally-kafka")
		// The CRDs' schemas are enforced: a topic with no partitions is refused.
		bad := "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: bad, namespace: tally-kafka, labels: {strimzi.io/cluster: tally}}\nspec: {partitions: 0}\n"
		if out, err := k.kubectl(bad, "apply", "--server-side", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "partitions") {
			t.Errorf("a KafkaTopic with 0 partitions was not refused by the schema: %v\n%s", err, out)
		}
	})

	t.Run("Secrets are made once and shared", func(t *testing.T) {
		value := func(ns, name, key string) string {
			return k.must("", "get", "secret", name, "-n", ns, "-o", "jsonpath={.data."+key+"}")
		}
		for _, shared := range []struct{ name, server, client string }{
			{"redis-auth", "tally-data", "tally"},
			{"redis-grafana", "tally-data", "tally-monitoring"},
			{"mongodb-auth", "tally-data", "tally"},
		} {
			server := value(shared.server, shared.name, "password")
			if server == "" || value(shared.client, shared.name, "password") != server {
				t.Errorf("%s in %s is empty or differs from %s's", shared.name, shared.client, shared.server)
			}
		}
		if value("tally-data", "redis-auth", "password") == value("tally-data", "redis-grafana", "password") {
			t.Error("Grafana's Redis password is the consumer's")
		}
		redis := value("tally-data", "redis-auth", "password")
		k.apply("apply")
		if got := value("tally-data", "redis-auth", "password"); got != redis {
			t.Error("a second apply changed the Redis password")
		}
	})

	t.Run("diff after apply shows no changes", func(t *testing.T) {
		if out := k.apply("diff"); !strings.Contains(out, "no changes") {
			t.Errorf("k8s/apply.sh diff right after apply:\n%s", out)
		}
	})
}
