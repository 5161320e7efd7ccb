// Package kubernetes_test applies Tally's rendered manifests with //k8s:apply's own script to a
// real, empty Kubernetes API server (etcd, kube-apiserver, controller-manager, scheduler, and kwok
// standing in for kubelets): the script installs the Strimzi operator from its released files,
// then Tally; the test checks what the cluster made of them, that //k8s:diff is then empty and
// that //k8s:delete removes it all.
package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/redis/go-redis/v9"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/kubecluster"
	"github.com/tally-voting/tally/go/test/runfile"
)

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

// apply runs k8s/apply.sh, the script behind //k8s:apply, //k8s:diff and //k8s:delete, on
// rendered manifests, with Strimzi's released install files from the shared folder.
func (k *cluster) apply(mode string, r rendered, extra ...string) string {
	k.t.Helper()
	out, err := k.run(mode, r, extra...)
	if err != nil {
		k.t.Fatalf("k8s/apply.sh %s: %v\n%s", mode, err, out)
	}
	return out
}

// run is apply that returns the script's failure.
func (k *cluster) run(mode string, r rendered, extra ...string) (string, error) {
	args := append([]string{runfile.Path(k.t, "APPLY"), mode, r.manifests, r.refs, runfile.Path(k.t, "PUSH"),
		runfile.Path(k.t, "STRIMZI"), runfile.Path(k.t, "STRIMZI_PIN"),
		"--kubeconfig", k.c.Kubeconfig, "--strimzi-install", runfile.Path(k.t, "STRIMZI_INSTALL")}, extra...)
	out, err := exec.CommandContext(k.ctx, "bash", args...).CombinedOutput()
	return string(out), err
}

// standInForStrimzi marks Kafka tally Ready once it exists, as the operator does when its
// brokers are up: kwok runs no containers, so the operator installed by apply never reconciles.
// It is the one thing the test does in the operator's place; apply must wait for it.
func (k *cluster) standInForStrimzi() <-chan time.Time {
	marked := make(chan time.Time, 1)
	go func() {
		for k.ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			if _, err := k.kubectl("", "get", "kafka", "tally", "-n", "tally-kafka"); err != nil {
				continue
			}
			time.Sleep(2 * time.Second) // apply is waiting by now: the wait must be what ends
			_, err := k.kubectl("", "patch", "kafka", "tally", "-n", "tally-kafka", "--subresource=status", "--type=merge",
				"-p", `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"TestStandIn"}]}}`)
			if err == nil {
				marked <- time.Now()
				return
			}
		}
	}()
	return marked
}

// addNodes registers n more kwok nodes, kwok-node-1 and on, as kubecluster registers the first.
func (k *cluster) addNodes(n int) {
	k.t.Helper()
	var docs []string
	for i := 1; i <= n; i++ {
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Node
metadata:
  name: kwok-node-%[1]d
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-%[1]d, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "200", ephemeral-storage: 1Ti}
  capacity: {cpu: "64", memory: 256Gi, pods: "200", ephemeral-storage: 1Ti}`, i))
	}
	k.must(strings.Join(docs, "\n---\n"), "create", "-f", "-")
	k.must("", "wait", "--for", "condition=Ready", "node", "--all", "--timeout", "60s")
}

// rendered is a render's output: the manifests and the refs of our images ("name ref" lines).
type rendered struct{ manifests, refs string }

// forRegistry copies Bazel's render with our images' registry/repository prefix replaced by
// addr/tally, as --//k8s:registry=addr renders it, so //k8s:apply pushes to a test registry.
func forRegistry(t *testing.T, r rendered, addr string) rendered {
	t.Helper()
	refs, err := os.ReadFile(r.refs)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Fields(strings.SplitN(string(refs), "\n", 2)[0])
	if len(first) != 2 {
		t.Fatalf("%s: first line %q is not \"name ref\"", r.refs, first)
	}
	prefix := first[1][:strings.LastIndex(first[1], "/")+1] // docker.io/tally/
	dir := t.TempDir()
	out := rendered{filepath.Join(dir, "manifests.yaml"), filepath.Join(dir, "manifests.refs")}
	for from, to := range map[string]string{r.manifests: out.manifests, r.refs: out.refs} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, []byte(strings.ReplaceAll(string(data), prefix, addr+"/tally/")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// startRedis runs the toolchain's redis-server with args on a free loopback port and returns
// the port.
func startRedis(t *testing.T, args []string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command("redis-server", append(args, "--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", "")...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("redis-server log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start:\n%s", logs.String())
		}
	}
}

// startRegistry runs Debian's docker-registry (the Distribution registry) on a free loopback port.
func startRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	err = os.WriteFile(config, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "storage"), addr)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", config)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not start: %v\n%s", err, logs.String())
		}
	}
}

// eachContainer calls f with every container and init container of a workload, however deep its
// pod template lies (a CronJob's is in its Job's).
func eachContainer(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		for key, child := range v {
			if list, ok := child.([]any); ok && (key == "containers" || key == "initContainers") {
				for _, c := range list {
					if c, ok := c.(map[string]any); ok {
						f(c)
					}
				}
				continue
			}
			eachContainer(child, f)
		}
	case []any:
		for _, child := range v {
			eachContainer(child, f)
		}
	}
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// byDigest says whether ref is an image reference pinned by digest, with its tag or without.
func byDigest(ref string) bool {
	named, digest, ok := strings.Cut(ref, "@")
	_, err := name.ParseReference(named)
	return ok && sha256Digest.MatchString(digest) && err == nil
}

func TestApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	k := startCluster(t, ctx)
	// GKE's own kinds (ManagedCertificate, FrontendConfig, BackendConfig) exist on every GKE
	// cluster; here, stand-in CRDs that accept any content (render_test checks the content).
	if err := k.c.InstallCRDs(ctx, runfile.Path(t, "GKE_CRDS")); err != nil {
		t.Fatal(err)
	}
	// The StatefulSets' claims (Redis, MongoDB's members): a real cluster's StorageClass makes volumes.
	if err := k.c.AddVolumes(ctx, 1+mongoMembers); err != nil {
		t.Fatal(err)
	}
	// MongoDB's 3 members each need a node of their own (DoNotSchedule per hostname): fake nodes
	// beside the control plane's, made the way it makes its own.
	k.addNodes(mongoMembers - 1)

	// What //k8s:apply does, pushing to a registry on loopback instead of Docker Hub.
	registry := startRegistry(t)
	r := forRegistry(t, rendered{runfile.Path(t, "MANIFESTS"), runfile.Path(t, "REFS")}, registry)

	renderedObjects, err := os.ReadFile(r.manifests)
	if err != nil {
		t.Fatal(err)
	}
	objects := len(regexp.MustCompile(`(?m)^kind: `).FindAll(renderedObjects, -1))

	t.Run("diff on an empty cluster lists every object, the operator's too", func(t *testing.T) {
		out := k.apply("diff", r)
		n := strings.Count(out, "  create  ")
		if n < objects+20 || !strings.Contains(out, "create  Deployment tally/consumer") ||
			!strings.Contains(out, "create  Deployment strimzi/strimzi-cluster-operator") ||
			!strings.Contains(out, "create  CustomResourceDefinition kafkas.kafka.strimzi.io") {
			t.Errorf("diff before the first apply lists %d objects to create, want Tally's %d and the operator's:\n%s", n, objects, out)
		}
	})
	if out, err := k.kubectl("", "get", "crd", "kafkas.kafka.strimzi.io"); err == nil {
		t.Fatalf("Strimzi's CRDs are there before apply: the cluster is not empty\n%s", out)
	}
	started := time.Now()
	kafkaReady := k.standInForStrimzi()
	out := k.apply("apply", r, "--timeout", "120s")
	finished := time.Now()
	t.Logf("k8s/apply.sh apply took %v:\n%s", finished.Sub(started).Round(time.Millisecond), tail(out, 4<<10))

	t.Run("apply installs the Strimzi operator and waits for Kafka", func(t *testing.T) {
		got := k.must("", "get", "deployment", "strimzi-cluster-operator", "-n", "strimzi", "-o",
			`jsonpath={.status.readyReplicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[?(@.name=="STRIMZI_NAMESPACE")].value}`)
		// The committed settings run the operator built here (images.strimzi: ours), pushed with ours.
		refs, err := os.ReadFile(r.refs)
		if err != nil {
			t.Fatal(err)
		}
		operator := regexp.MustCompile(`(?m)^strimzi-operator (\S+)$`).FindSubmatch(refs)
		if operator == nil || got != "1 "+string(operator[1])+" tally-kafka" {
			t.Errorf("operator: ready, image, watched namespace = %q; refs:\n%s", got, refs)
		}
		for _, ns := range []string{"strimzi", "tally-kafka"} {
			if _, err := k.kubectl("", "get", "rolebinding", "strimzi-cluster-operator", "-n", ns); err != nil {
				t.Errorf("the operator's RoleBinding is missing in %s", ns)
			}
		}
		select {
		case at := <-kafkaReady:
			if finished.Before(at) {
				t.Errorf("apply finished at %v, before Kafka was Ready at %v", finished, at)
			}
		default:
			t.Error("apply finished without Kafka ever being marked Ready")
		}
	})

	t.Run("the images are pushed by digest and the pods run them", func(t *testing.T) {
		refs, err := os.ReadFile(r.refs)
		if err != nil {
			t.Fatal(err)
		}
		// What pods run, and what CronJobs will run at their next schedule.
		running := k.must("", "get", "pods", "-A", "-o", "jsonpath={.items[*].spec.containers[*].image}") + " " +
			k.must("", "get", "cronjobs", "-A", "-o", "jsonpath={.items[*].spec.jobTemplate.spec.template.spec.containers[*].image}")
		for _, line := range strings.Split(strings.TrimSpace(string(refs)), "\n") {
			name, ref, _ := strings.Cut(line, " ")
			repo, digest, _ := strings.Cut(strings.TrimPrefix(ref, registry+"/"), "@")
			req, _ := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/"+repo+"/manifests/"+digest, nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != digest {
				t.Errorf("%s: the registry answers %s with digest %q for %s", name, resp.Status, resp.Header.Get("Docker-Content-Digest"), ref)
			}
			// The module-only image is pushed for WasmEdge RuntimeClass nodes; the API and the
			// webapp run on Cloud Run (//k8s:cloudrun); Strimzi's Kafka image runs in the brokers
			// the operator makes, which the stand-in here does not: no pod runs those.
			if name != "wasm-module" && name != "api" && name != "web" && name != "strimzi-kafka" && !strings.Contains(running, ref) {
				t.Errorf("no pod runs %s (%s)", ref, name)
			}
		}
	})

	t.Run("no image is named by tag alone, the operator's image variables included", func(t *testing.T) {
		var list struct{ Items []map[string]any }
		out := k.must("", "get", "deployments,statefulsets,daemonsets,jobs,cronjobs", "-A", "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		images, variables, unnamed := 0, 0, 0
		for _, item := range list.Items {
			meta, _ := item["metadata"].(map[string]any)
			where := fmt.Sprintf("%s %s/%s", item["kind"], meta["namespace"], meta["name"])
			eachContainer(item, func(c map[string]any) {
				images++
				if ref, _ := c["image"].(string); !byDigest(ref) {
					t.Errorf("%s: image %q is not named by digest", where, ref)
				}
				env, _ := c["env"].([]any)
				for _, e := range env {
					e, _ := e.(map[string]any)
					variable, _ := e["name"].(string)
					value, ok := e["value"].(string)
					if !ok || !(strings.HasSuffix(variable, "_IMAGE") || strings.HasSuffix(variable, "_IMAGES") || variable == "STRIMZI_DEFAULT_MAVEN_BUILDER") {
						continue
					}
					for _, line := range strings.Split(strings.TrimSpace(value), "\n") {
						if _, ref, ok := strings.Cut(line, "="); ok {
							line = ref
						}
						variables++
						// A variable for an image Tally never runs names none: a value that is
						// no image reference, which a kubelet refuses (InvalidImageName).
						if _, err := name.ParseReference(line); err != nil {
							unnamed++
						} else if !byDigest(line) {
							t.Errorf("%s: %s names %q, not by digest", where, variable, line)
						}
					}
				}
			})
		}
		// Strimzi 1.2.0's operator has 12 image variables, 4 of them for images Tally never runs.
		if images < 10 || variables < 12 || unnamed != 4 {
			t.Errorf("%d container images, %d references in image variables of which %d name no image: want Tally's workloads and the operator's 12 variables, 4 naming none", images, variables, unnamed)
		}
	})

	t.Run("pods meet the restricted Pod Security Standard", func(t *testing.T) {
		// The namespaces enforce it (and warn on the Strimzi namespace): apply printed no warning...
		if strings.Contains(out, "PodSecurity") {
			t.Errorf("apply reported Pod Security warnings:\n%s", out)
		}
		// ...and the enforcement is real: a pod that may run as root is refused.
		pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: rooted, namespace: tally}\nspec:\n  containers: [{name: c, image: \"example.invalid/c:1\"}]\n"
		if out, err := k.kubectl(pod, "apply", "--server-side", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "PodSecurity") {
			t.Errorf("a pod without a securityContext was not refused in namespace tally: %v\n%s", err, out)
		}
	})

	t.Run("every manifest is accepted", func(t *testing.T) {
		got := strings.Fields(k.must("", "get", "-f", r.manifests, "-o", "name"))
		if len(got) != objects || objects < 40 {
			t.Errorf("the cluster has %d of the %d rendered objects: %v", len(got), objects, got)
		}
	})

	t.Run("workloads roll out", func(t *testing.T) {
		for _, w := range []struct {
			kind, ns, name string
			replicas       string
		}{
			{"deployment", "tally", "grpc-producer", "2"},
			{"deployment", "tally", "wasm-producer", "2"},
			{"deployment", "tally-monitoring", "grafana", "1"},
			{"statefulset", "tally-data", "redis", "1"},
			{"statefulset", "tally-data", "mongodb", strconv.Itoa(mongoMembers)},
			{"deployment", "strimzi", "strimzi-cluster-operator", "1"},
		} {
			got := k.must("", "get", w.kind, w.name, "-n", w.ns, "-o", "jsonpath={.spec.replicas} {.status.readyReplicas}")
			if got != w.replicas+" "+w.replicas {
				t.Errorf("%s %s/%s: replicas and ready replicas = %q, want %s ready", w.kind, w.ns, w.name, got, w.replicas)
			}
		}
		// The API and the webapp are Cloud Run's, not the cluster's.
		for _, name := range []string{"api", "web"} {
			if _, err := k.kubectl("", "get", "deployment", name, "-n", "tally"); err == nil {
				t.Errorf("deployment %s runs in the cluster too", name)
			}
		}
		// The replica set's setup ran to completion (kwok completes a Job's pods).
		if got := k.must("", "get", "job", "mongodb-setup", "-n", "tally-data", "-o", "jsonpath={.status.succeeded}"); got != "1" {
			t.Errorf("job mongodb-setup succeeded = %q, want 1", got)
		}
		// kwok marks containers ready only once the scheduler has placed the pod on its node; the
		// HPA may be adding a consumer pod right now, so a Pending one gets a few seconds.
		var pods string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
			pods = k.must("", "get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{\"\\n\"}{end}")
			if !strings.Contains(pods, "Pending") || time.Now().After(deadline) {
				break
			}
		}
		mongoNodes := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(pods), "\n") {
			name, rest, _ := strings.Cut(line, " ")
			node, phase, _ := strings.Cut(rest, " ")
			want := "Running"
			if strings.HasPrefix(name, "mongodb-setup-") {
				want = "Succeeded"
			}
			if !strings.HasPrefix(node, "kwok-node-") || phase != want {
				t.Errorf("pod %s is %q, want on a kwok node and %s", name, rest, want)
			}
			if strings.HasPrefix(name, "mongodb-") && !strings.HasPrefix(name, "mongodb-setup-") {
				mongoNodes[node] = true
			}
		}
		// DoNotSchedule per hostname: each member on a node of its own.
		if len(mongoNodes) != mongoMembers {
			t.Errorf("MongoDB's %d members are on nodes %v, want one each", mongoMembers, mongoNodes)
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
		if got := k.must("", "get", "kafkanodepool", "dual-role", "-n", "tally-kafka", "-o", "jsonpath={.spec.roles} {.spec.replicas}"); got != `["controller","broker"] 3` {
			t.Errorf("KafkaNodePool roles and replicas = %s, want controller and broker (KRaft), 3 (k8s/settings.yaml)", got)
		}
		if got := k.must("", "get", "kafka", "tally", "-n", "tally-kafka", "-o", "jsonpath={.spec.kafka.config.min\\.insync\\.replicas}"); got != "2" {
			t.Errorf("min.insync.replicas = %q, want 2 of 3", got)
		}
		// The CRDs' schemas are enforced: a topic with no partitions is refused.
		bad := "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: bad, namespace: tally-kafka, labels: {strimzi.io/cluster: tally}}\nspec: {partitions: 0}\n"
		if out, err := k.kubectl(bad, "apply", "--server-side", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "partitions") {
			t.Errorf("a KafkaTopic with 0 partitions was not refused by the schema: %v\n%s", err, out)
		}
	})

	t.Run("Redis's users may do what their program does and nothing else", func(t *testing.T) {
		// Redis as the StatefulSet runs it (its args from the cluster, every $(X_PASSWORD) filled
		// in), the toolchain's redis-server being the image's version.
		var args []string
		raw := k.must("", "get", "statefulset", "redis", "-n", "tally-data", "-o", "jsonpath={.spec.template.spec.containers[0].args}")
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			t.Fatalf("redis args %q: %v", raw, err)
		}
		passwords := map[string]string{"default": "admin-test-password"}
		for i := range args {
			args[i] = regexp.MustCompile(`\$\(([A-Z]+)_PASSWORD\)`).ReplaceAllStringFunc(args[i], func(v string) string {
				user := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(v, "$("), "_PASSWORD)"))
				if user == "redis" {
					user = "default"
				}
				passwords[user] = user + "-test-password"
				return passwords[user]
			})
		}
		for _, user := range []string{"consumer", "api", "grafana"} {
			if passwords[user] == "" {
				t.Fatalf("Redis's args make no user %s: %v", user, args)
			}
		}
		cli := startRedis(t, args)
		as := func(user string, command ...string) string {
			out, err := exec.Command("redis-cli", append([]string{"-p", cli, "--user", user, "--pass", passwords[user], "--no-auth-warning"}, command...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %v: %v\n%s", command, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		denied := func(user string, command ...string) {
			t.Helper()
			if out := as(user, command...); !strings.Contains(out, "NOPERM") {
				t.Errorf("Redis user %s may run %v: %q", user, command, out)
			}
		}

		// The consumer counts a batch with its real script, as itself.
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + cli, Username: "consumer", Password: passwords["consumer"]})
		defer rdb.Close()
		now := time.Now()
		res, err := counts.New(rdb).Apply(ctx, 0, -1, 1, []counts.Vote{
			{Offset: 0, Band: "Alux Nahual", Album: "Conquista", AcceptedAt: now},
			{Offset: 1, Band: "Bohemia Suburbana", Album: "Tierra Santa", AcceptedAt: now},
		})
		if err != nil || res.Counted != 2 {
			t.Fatalf("the consumer's Apply as Redis user consumer: %+v, %v", res, err)
		}
		if applied, err := counts.New(rdb).Applied(ctx, 0); err != nil || applied != 1 {
			t.Errorf("the consumer's watermark read: %d, %v", applied, err)
		}
		denied("consumer", "FLUSHALL")
		denied("consumer", "SET", "other:key", "1")
		denied("consumer", "CONFIG", "GET", "*")

		// The API reads the counts it shows, and writes nothing.
		for _, c := range [][]string{
			{"GET", counts.TotalKey}, {"HGETALL", counts.BandKey}, {"HGETALL", counts.BandAlbumsKey("Alux Nahual")}, {"PING"},
		} {
			if out := as("api", c...); out == "" || strings.Contains(out, "NOPERM") {
				t.Errorf("the API's user: %v = %q", c, out)
			}
		}
		denied("api", "HINCRBY", counts.BandKey, "Alux Nahual", "1")
		denied("api", "GET", counts.AppliedKey(0))
		denied("api", "EVAL", "return 1", "0")

		// Grafana runs every query of the dashboards. The script reads the last complete bucket;
		// the current one holds the same votes so that crossing a 10 s boundary changes nothing.
		unix := time.Now().Unix()
		last, current := strconv.FormatInt(unix-unix%10-10, 10), strconv.FormatInt(unix-unix%10, 10)
		for _, c := range [][]string{
			{"HSET", "tally:votes:10s:" + current, "Alux Nahual", "2", "Bohemia Suburbana", "5"},
			{"HSET", "tally:votes:10s:" + last, "Alux Nahual", "2", "Bohemia Suburbana", "5"},
		} {
			as("default", c...)
		}
		type panel struct {
			Title   string                                           `json:"title"`
			Targets []struct{ Type, Command, KeyName, Query string } `json:"targets"`
		}
		var panels []panel
		for _, f := range strings.Fields(os.Getenv("DASHBOARDS")) {
			var dash struct{ Panels []panel }
			data, err := os.ReadFile(filepath.Join(os.Getenv("TEST_SRCDIR"), f))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &dash); err != nil {
				t.Fatal(err)
			}
			panels = append(panels, dash.Panels...)
		}
		if len(panels) == 0 {
			t.Fatal("no dashboard panels ($DASHBOARDS)")
		}
		script := regexp.MustCompile(`^EVAL_RO "(.*)" 0$`)
		for _, p := range panels {
			for _, q := range p.Targets {
				var out string
				if q.Type == "cli" {
					m := script.FindStringSubmatch(q.Query)
					if m == nil {
						t.Fatalf("%s: query %q", p.Title, q.Query)
					}
					out = as("grafana", "EVAL_RO", m[1], "0")
				} else {
					out = as("grafana", strings.ToUpper(q.Command), q.KeyName)
				}
				if out == "" || strings.Contains(out, "ERR") || strings.Contains(out, "NOPERM") {
					t.Errorf("%s: Grafana's user got %q", p.Title, out)
				}
				if p.Title == "Votes per 10 seconds" && out != "7" {
					t.Errorf("%s: %q, want 7 (the last complete bucket's votes)", p.Title, out)
				}
			}
		}
		denied("grafana", "HINCRBY", counts.BandKey, "Alux Nahual", "1")
		denied("grafana", "GET", counts.AppliedKey(0))
		denied("grafana", "EVAL", "return 1", "0")
		denied("grafana", "FLUSHALL")
	})

	t.Run("Secrets are made once and shared", func(t *testing.T) {
		value := func(ns, name, key string) string {
			return k.must("", "get", "secret", name, "-n", ns, "-o", "jsonpath={.data."+key+"}")
		}
		for _, shared := range []struct{ name, client string }{
			{"redis-consumer", "tally"},
			{"redis-grafana", "tally-monitoring"},
			{"mongodb-consumer", "tally"},
		} {
			server := value("tally-data", shared.name, "password")
			if server == "" || value(shared.client, shared.name, "password") != server {
				t.Errorf("%s in %s is empty or differs from tally-data's", shared.name, shared.client)
			}
		}
		// Each user its own password; the API's and the administrators' stay in tally-data.
		seen := map[string]string{}
		for _, name := range []string{"redis-auth", "redis-consumer", "redis-api", "redis-grafana", "mongodb-auth", "mongodb-consumer", "mongodb-api"} {
			v := value("tally-data", name, "password")
			if other, dup := seen[v]; dup || v == "" {
				t.Errorf("Secret %s's password is empty or %s's", name, other)
			}
			seen[v] = name
		}
		for _, private := range []string{"redis-auth", "redis-api", "mongodb-auth", "mongodb-api", "mongodb-keyfile"} {
			if out, err := k.kubectl("", "get", "secret", private, "-n", "tally"); err == nil {
				t.Errorf("Secret %s is copied into namespace tally, whose pods do not use it\n%s", private, out)
			}
		}
		redisPassword := value("tally-data", "redis-consumer", "password")
		k.apply("apply", r, "--skip-push", "--timeout", "120s") // Kafka is Ready already
		if got := value("tally-data", "redis-consumer", "password"); got != redisPassword {
			t.Error("a second apply changed the consumer's Redis password")
		}
	})

	t.Run("a changed Job runs again", func(t *testing.T) {
		// A Job's template cannot be changed in place: apply deletes the old Job and makes it anew.
		uid := func() string {
			return k.must("", "get", "job", "mongodb-setup", "-n", "tally-data", "-o", "jsonpath={.metadata.uid} {.status.succeeded}")
		}
		before := uid()
		changed := rendered{filepath.Join(t.TempDir(), "manifests.yaml"), r.refs}
		data, err := os.ReadFile(r.manifests)
		if err != nil {
			t.Fatal(err)
		}
		const level = "- {name: LOG_LEVEL, value: info}"
		if !bytes.Contains(data, []byte(level)) {
			t.Fatalf("the setup Job no longer sets %q: change this test's edit", level)
		}
		if err := os.WriteFile(changed.manifests, bytes.Replace(data, []byte(level), []byte("- {name: LOG_LEVEL, value: debug}"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		out := k.apply("apply", changed, "--skip-push", "--timeout", "120s")
		after := uid()
		if after == before || !strings.HasSuffix(after, " 1") || !strings.Contains(out, "Job tally-data/mongodb-setup changed") {
			t.Errorf("Job uid and succeeded %q before, %q after a changed apply:\n%s", before, after, tail(out, 2<<10))
		}
		k.apply("apply", r, "--skip-push", "--timeout", "120s")
	})

	t.Run("diff after apply shows no changes", func(t *testing.T) {
		if out := k.apply("diff", r); !strings.Contains(out, "no changes") {
			t.Errorf("k8s/apply.sh diff right after apply:\n%s", out)
		}
	})

	// What the operator would have done for Kafka's brokers: a cluster id in the status and a
	// volume claim per broker, labelled with the cluster (kwok runs no operator).
	const clusterID = "Yq7tV0b9QmKc3xW1pZrLsA"
	k.must("", "patch", "kafka", "tally", "-n", "tally-kafka", "--subresource=status", "--type=merge",
		"-p", `{"status":{"clusterId":"`+clusterID+`"}}`)
	k.must(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data-tally-dual-role-0
  namespace: tally-kafka
  labels: {strimzi.io/cluster: tally, strimzi.io/kind: Kafka, strimzi.io/pool-name: dual-role}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 20Gi}}`, "create", "-f", "-")

	t.Run("delete keeps Kafka's cluster id, apply gives it back to the kept volumes", func(t *testing.T) {
		k.apply("delete", r, "--timeout", "120s")
		if got := k.must("", "get", "configmap", "kafka-cluster-id", "-n", "tally-kafka", "-o", "jsonpath={.data.clusterId}"); got != clusterID {
			t.Fatalf("after delete, the kept cluster id is %q, want %s", got, clusterID)
		}
		kafkaReady := k.standInForStrimzi()
		out := k.apply("apply", r, "--skip-push", "--timeout", "120s")
		<-kafkaReady
		got := k.must("", "get", "kafka", "tally", "-n", "tally-kafka", "-o",
			`jsonpath={.status.clusterId} {.metadata.annotations.strimzi\.io/pause-reconciliation}`)
		if got != clusterID+" " || !strings.Contains(out, "cluster id "+clusterID) {
			t.Errorf("the re-created Kafka: cluster id and pause annotation %q, want %s and none\n%s", got, clusterID, tail(out, 2<<10))
		}

		// Without the kept id, apply refuses before changing anything.
		k.apply("delete", r, "--timeout", "120s")
		k.must("", "delete", "configmap", "kafka-cluster-id", "-n", "tally-kafka")
		out, err := k.run("apply", r, "--skip-push", "--timeout", "120s")
		if err == nil || !strings.Contains(out, "cluster id they were formatted with is not") {
			t.Errorf("apply with kept Kafka volumes and no cluster id: %v\n%s", err, tail(out, 2<<10))
		}
		if left, _ := k.kubectl("", "get", "deployments", "-A", "-o", "name"); strings.TrimSpace(left) != "" {
			t.Errorf("the refused apply created:\n%s", left)
		}
	})

	t.Run("delete removes everything but the volumes, then the volumes", func(t *testing.T) {
		k.apply("delete", r, "--timeout", "120s")
		left := k.must("", "get", "-f", r.manifests, "--ignore-not-found", "-o", "name")
		if strings.TrimSpace(left) != "namespace/tally-kafka\nnamespace/tally-data" {
			t.Errorf("after delete, of the rendered objects these are left (want only the namespaces holding volumes):\n%s", left)
		}
		if out := k.must("", "get", "crd", "-o", "name"); strings.Contains(out, "strimzi.io") {
			t.Errorf("the Strimzi operator's CRDs are left:\n%s", out)
		}
		if out := k.must("", "get", "clusterroles", "-o", "name"); strings.Contains(out, "strimzi") {
			t.Errorf("the Strimzi operator's ClusterRoles are left:\n%s", out)
		}
		claims := k.must("", "get", "pvc", "-n", "tally-data", "-o", "name")
		if n := len(strings.Fields(claims)); n != 1+mongoMembers {
			t.Errorf("after delete, %d volume claims are left in tally-data, want all %d:\n%s", n, 1+mongoMembers, claims)
		}
		workloads := k.must("", "get", "deployments,statefulsets,jobs,services,configmaps,networkpolicies", "-n", "tally-data", "-o", "name")
		if strings.TrimSpace(workloads) != "configmap/kube-root-ca.crt" {
			t.Errorf("after delete, tally-data still holds:\n%s", workloads)
		}

		k.apply("delete", r, "--volumes", "--timeout", "120s")
		for _, ns := range []string{"tally-data", "tally-kafka"} {
			if out, err := k.kubectl("", "get", "namespace", ns); err == nil {
				t.Errorf("after delete --volumes, namespace %s is left:\n%s", ns, out)
			}
		}
		if out := k.must("", "get", "pvc", "-A", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("after delete --volumes, volume claims are left:\n%s", out)
		}
	})
}

// mongoMembers is the replica set's size in k8s/settings.yaml, the rendered default.
const mongoMembers = 3
