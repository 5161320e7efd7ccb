package main

import (
	"os"
	"strings"
	"testing"

	"github.com/tally-voting/tally/go/test/runfile"
)

const fixture = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer, namespace: tally}
spec:
  template:
    spec:
      containers:
        - name: consumer
          image: docker.io/tally/consumer@sha256:0123
          ports: [{name: metrics, containerPort: 9102}]
          resources: {requests: {cpu: 200m, memory: 64Mi}, limits: {cpu: "1", memory: 256Mi}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: consumer, namespace: tally}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: consumer}
  minReplicas: 2
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis, namespace: tally-data}
spec:
  replicas: 1
  template:
    spec:
      containers: [{name: redis, image: "redis:8.0"}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {resources: {requests: {storage: 2Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: redis, namespace: tally-data}
spec:
  clusterIP: None
  selector: {app: redis}
  ports: [{name: redis, port: 6379}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: tally, namespace: tally}
spec:
  rules:
    - host: grpc.tally.example
      http:
        paths: [{path: /votes, pathType: Exact, backend: {service: {name: grpc-producer, port: {name: http}}}}]
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata: {name: votes-dlq, namespace: tally-kafka}
spec: {topicName: votes.dlq, partitions: 1, replicas: 1}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: consumer, namespace: tally}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ballot, namespace: tally}
data:
  ballot.json: '{"bands": [{"name": "Alux Nahual", "albums": [{"album": "Conquista", "year": 1982}, {"album": "Alto al Fuego", "year": 1987}]}]}'
`

const cloudRunFixture = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: tally-api}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/minScale: "1"
        autoscaling.knative.dev/maxScale: "5"
        run.googleapis.com/vpc-access-egress: private-ranges-only
    spec:
      containerConcurrency: 200
      timeoutSeconds: 3600
      containers: [{name: api, image: docker.io/tally/api@sha256:abcd}]
`

func decode(t *testing.T, s string) []object {
	t.Helper()
	objs, err := Decode(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestSectionRows(t *testing.T) {
	got, err := Section(decode(t, fixture), decode(t, cloudRunFixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// The Deployment has no replicas of its own: the HPA's range is shown, and no digest.
		"| `tally` | `consumer` | Deployment | HPA 2–5 | consumer: `docker.io/tally/consumer` | metrics 9102 | 200m CPU, 64Mi / 1 CPU, 256Mi |",
		"| `tally-data` | `redis` | StatefulSet | 1; volumen `data` 2Gi | redis: `redis:8.0` | — | — / — |",
		"| `tally-data` | `redis` | headless | redis 6379 → 6379 | `app=redis` |",
		"| `tally` | `consumer` | Deployment `consumer` | 2–5 | cpu al 70 % |",
		"| `tally` | `tally` | `grpc.tally.example` | `/votes` | `grpc-producer:http` |",
		"| `tally-kafka` | `votes-dlq` | KafkaTopic | tópico `votes.dlq`: 1 partición, 1 réplica |",
		"| `tally-api` | api: `docker.io/tally/api` | 1–5 | 200 | 3600 s | `private-ranges-only` |",
		// The ballot as the producers get it, from its ConfigMap.
		"| Alux Nahual | Conquista (1982); Alto al Fuego (1987) |",
		"Además, los manifiestos crean objetos de estos tipos (entre paréntesis, cuántos): ConfigMap (1), ServiceAccount (1).",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks\n%s\nin\n%s", want, got)
		}
	}
	if strings.Contains(got, "sha256") {
		t.Errorf("a digest leaked into the section:\n%s", got)
	}
}

func TestCountAgreesInNumber(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 particiones"}, {1, "1 partición"}, {6, "6 particiones"}} {
		if got := count(c.n, "partición", "particiones"); got != c.want {
			t.Errorf("count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestCloudRunMustBeKnative(t *testing.T) {
	_, err := Section(nil, decode(t, fixture))
	if err == nil || !strings.Contains(err.Error(), "not a Cloud Run service") {
		t.Fatalf("want an error for a non-Knative object, got %v", err)
	}
}

func TestReplaceKeepsTheRest(t *testing.T) {
	manual := "# M\n\nantes\n" + Begin + "\nviejo\n" + End + "\ndespués\n"
	got, err := Replace(manual, "nuevo\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# M\n\nantes\n" + Begin + "\nnuevo\n\n" + End + "\ndespués\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := Replace("sin marcas", "x"); err == nil {
		t.Fatal("want an error when the markers are missing")
	}
}

// The committed manual's section is what the rendered manifests give now.
func TestManualMatchesRenderedManifests(t *testing.T) {
	manual, err := os.ReadFile(runfile.Path(t, "MANUAL"))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Update(string(manual), runfile.Path(t, "MANIFESTS"), runfile.Path(t, "CLOUDRUN"))
	if err != nil {
		t.Fatal(err)
	}
	if fresh != string(manual) {
		t.Fatalf("docs/manual/README.md's Deployments and Services section is stale; run "+
			"tools/bazel run //docs/manual/objects. The fresh section:\n%s", section(fresh))
	}
}

func section(manual string) string {
	start := strings.Index(manual, Begin)
	end := strings.Index(manual, End)
	if start < 0 || end < start {
		return manual
	}
	return manual[start:end]
}
