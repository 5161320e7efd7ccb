package stack

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tally-voting/tally/go/internal/queue"
)

// The local Kafka's topics and broker settings are the deployed cluster's: the rendered manifests
// (//k8s:manifests, with k8s/settings.yaml's kafka.brokers) against a stack of as many nodes.
// Replication and min.insync.replicas are defined once in go/internal/queue for the stack and
// in k8s/render for the manifests; this is what keeps the two from drifting.
func TestTopicSettingsAreTheManifests(t *testing.T) {
	rel := os.Getenv("K8S_MANIFESTS")
	if rel == "" {
		t.Skip("K8S_MANIFESTS is not set: run this test with tools/bazel test")
	}
	data, err := os.ReadFile(filepath.Join(os.Getenv("TEST_SRCDIR"), "_main", rel))
	if err != nil {
		t.Fatal(err)
	}
	type doc struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
		Spec struct {
			Replicas   int    `yaml:"replicas"`
			Partitions int    `yaml:"partitions"`
			TopicName  string `yaml:"topicName"`
			Kafka      struct {
				Config map[string]any `yaml:"config"`
			} `yaml:"kafka"`
		} `yaml:"spec"`
	}
	brokers := 0
	brokerConfig := map[string]any{}
	topics := map[string]doc{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d doc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("manifests: %v", err)
		}
		switch d.Kind {
		case "KafkaNodePool":
			brokers += d.Spec.Replicas
		case "Kafka":
			brokerConfig = d.Spec.Kafka.Config
		case "KafkaTopic":
			name := d.Spec.TopicName
			if name == "" {
				name = d.Metadata.Name
			}
			topics[name] = d
		}
	}
	if brokers != 1 && brokers != KafkaClusterNodes {
		t.Fatalf("the manifests run %d Kafka nodes; the stack runs 1 or %d", brokers, KafkaClusterNodes)
	}
	cfg := Config{DataDir: "/data", Ports: DefaultPorts, KafkaNodes: brokers}
	replication, minInsync := cfg.TopicSettings()

	for name, partitions := range map[string]int{queue.VotesTopic: queue.VotesPartitions, queue.DeadLetterTopic: queue.DeadLetterPartitions} {
		d, ok := topics[name]
		if !ok {
			t.Errorf("the manifests have no KafkaTopic %s", name)
			continue
		}
		if d.Spec.Partitions != partitions || d.Spec.Replicas != replication {
			t.Errorf("KafkaTopic %s: %d partitions, %d replicas; the stack's: %d, %d",
				name, d.Spec.Partitions, d.Spec.Replicas, partitions, replication)
		}
	}
	if len(topics) != 2 {
		t.Errorf("the manifests have %d KafkaTopics, the stack creates 2", len(topics))
	}

	// Every broker setting the manifests give, the stack's nodes have with the same value.
	props := map[string]string{}
	for _, line := range strings.Split(cfg.kafkaProperties(1, "/data/kafka"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	if got := props["min.insync.replicas"]; got != strconv.Itoa(minInsync) {
		t.Errorf("the stack's brokers have min.insync.replicas=%s, its topics %d", got, minInsync)
	}
	if len(brokerConfig) == 0 {
		t.Fatal("the manifests' Kafka has no config")
	}
	for k, v := range brokerConfig {
		want := strings.TrimSpace(strings.ToLower(toString(v)))
		if got, ok := props[k]; !ok || got != want {
			t.Errorf("broker setting %s: the manifests say %s, the stack's node %q", k, want, got)
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	default:
		return ""
	}
}
