package kubecluster

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDeploymentRollsOut starts the control plane, rolls out a Deployment onto the kwok node and
// stops everything, timing the stop: kube-apiserver must go before etcd to exit at once.
func TestDeploymentRollsOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	started := time.Now()
	cfg, err := Config{Dir: t.TempDir(), Log: &logs}.FromRunfiles()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	t.Logf("control plane ready in %v", time.Since(started).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		out, err := c.Kubectl(ctx, stdin, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		return out
	}
	kubectl(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "example.invalid/web:1"}]
`, "apply", "--server-side", "-f", "-")
	kubectl("", "rollout", "status", "deployment/web", "--timeout=90s")
	if got := kubectl("", "get", "deployment/web", "-o", "jsonpath={.status.readyReplicas}"); got != "3" {
		t.Errorf("ready replicas = %q, want 3", got)
	}
	nodes := kubectl("", "get", "pods", "-o", "jsonpath={.items[*].spec.nodeName}")
	if strings.Count(nodes, NodeName) != 3 {
		t.Errorf("pods on nodes %q, want all 3 on %s", nodes, NodeName)
	}

	stopStart := time.Now()
	c.Stop()
	stopped = true
	if took := time.Since(stopStart); took > 15*time.Second {
		t.Errorf("stop took %v: kube-apiserver did not exit before etcd", took)
	}
	t.Logf("stopped in %v", time.Since(stopStart).Round(time.Millisecond))
}
