package realnode_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// bootstrap is the Kafka cluster's bootstrap Service, as the producers and the consumer reach it.
const bootstrap = "tally-kafka-bootstrap.tally-kafka.svc:9092"

// TestStrimziReconcilesKafka: //k8s:apply (k8s/apply.sh) on an empty cluster with a real node
// installs Strimzi's operator from the images built here and applies Tally's namespaces and
// Kafka resources only (//k8s:realnode_manifests: one KRaft broker); then checkKafka.
func TestStrimziReconcilesKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e := start(t, ctx, "")
	// The namespaces (apply makes its Secrets in each) and Kafka's resources, nothing else.
	r := e.only(realnodeRender(t), "Namespace", "Kafka", "KafkaNodePool", "KafkaTopic")
	refs := readRefs(t, r.refs)
	if refs["strimzi-operator"] == "" || refs["strimzi-kafka"] == "" {
		t.Fatalf("the render's refs name no Strimzi image of ours: %v", refs)
	}
	out, err := e.apply("apply", r, "--timeout", "8m")
	e.logf("k8s/apply.sh apply:\n%s", out)
	if err != nil {
		e.pods("strimzi", "tally-kafka")
		t.Fatalf("apply: %v", err)
	}
	checkKafka(t, e, refs)
	e.pods("strimzi", "tally-kafka")
}

// checkKafka checks what Strimzi's operator, from the image built here, made of Tally's Kafka
// (k8s/manifests/kafka.yaml, one KRaft broker; refs: the render's, naming the Strimzi images built
// here): the operator, not the test, made the Kafka, its node pool and both topics Ready; the
// broker, a process on this machine, serves the votes topic through the bootstrap Service, and
// the topic operator created votes and votes.dlq with the settings their KafkaTopics give.
func checkKafka(t *testing.T, e *env, refs map[string]string) {
	t.Helper()
	// The operator and the broker run the images built here, as the install said.
	if got := e.kubectl("", "get", "deployment", "strimzi-cluster-operator", "-n", "strimzi", "-o",
		"jsonpath={.spec.template.spec.containers[0].image}"); got != refs["strimzi-operator"] {
		t.Errorf("the operator runs %q, want %s", got, refs["strimzi-operator"])
	}
	if got := e.kubectl("", "get", "pod", "tally-dual-role-0", "-n", "tally-kafka", "-o",
		"jsonpath={.spec.containers[0].image}"); got != refs["strimzi-kafka"] {
		t.Errorf("the broker runs %q, want %s", got, refs["strimzi-kafka"])
	}

	// Ready by the operator: conditions it wrote, with the cluster id it made.
	var kafkaStatus struct {
		Status struct {
			ClusterID          string      `json:"clusterId"`
			KafkaVersion       string      `json:"kafkaVersion"`
			ObservedGeneration int         `json:"observedGeneration"`
			Conditions         []condition `json:"conditions"`
			KafkaNodePools     []struct {
				Name string `json:"name"`
			} `json:"kafkaNodePools"`
		} `json:"status"`
	}
	e.getJSON(&kafkaStatus, "kafka", "tally", "-n", "tally-kafka")
	st := kafkaStatus.Status
	if !ready(st.Conditions) || st.ClusterID == "" || st.KafkaVersion != "4.3.1" || len(st.KafkaNodePools) != 1 {
		t.Errorf("Kafka tally's status: %+v", st)
	}
	e.logf("Kafka tally: Ready, cluster id %s, Kafka %s, conditions %v", st.ClusterID, st.KafkaVersion, st.Conditions)

	var pool struct {
		Status struct {
			ClusterID  string      `json:"clusterId"`
			NodeIDs    []int       `json:"nodeIds"`
			Roles      []string    `json:"roles"`
			Replicas   int         `json:"replicas"`
			Conditions []condition `json:"conditions"`
		} `json:"status"`
	}
	e.getJSON(&pool, "kafkanodepool", "dual-role", "-n", "tally-kafka")
	slices.Sort(pool.Status.Roles)
	if pool.Status.ClusterID != st.ClusterID || !slices.Equal(pool.Status.NodeIDs, []int{0}) || pool.Status.Replicas != 1 ||
		!slices.Equal(pool.Status.Roles, []string{"broker", "controller"}) {
		t.Errorf("KafkaNodePool dual-role's status: %+v (Kafka's cluster id %s)", pool.Status, st.ClusterID)
	}
	e.logf("KafkaNodePool dual-role: node ids %v, roles %v, cluster id %s", pool.Status.NodeIDs, pool.Status.Roles, pool.Status.ClusterID)

	// The topics: the topic operator makes them in Kafka, then marks their resources Ready.
	e.kubectl("", "wait", "--for=condition=Ready", "kafkatopic/votes", "kafkatopic/votes-dlq", "-n", "tally-kafka", "--timeout=3m")
	topicIDs := map[string]string{}
	for _, name := range []string{"votes", "votes-dlq"} {
		var topic struct {
			Status struct {
				TopicName  string      `json:"topicName"`
				TopicID    string      `json:"topicId"`
				Conditions []condition `json:"conditions"`
			} `json:"status"`
		}
		e.getJSON(&topic, "kafkatopic", name, "-n", "tally-kafka")
		if !ready(topic.Status.Conditions) || topic.Status.TopicID == "" {
			t.Errorf("KafkaTopic %s's status: %+v", name, topic.Status)
		}
		topicIDs[topic.Status.TopicName] = topic.Status.TopicID
		e.logf("KafkaTopic %s: Ready, topic %s, id %s", name, topic.Status.TopicName, topic.Status.TopicID)
	}

	// The broker itself, through the bootstrap Service and the address it advertises.
	client := kafkaClient()
	meta, err := client.Metadata(e.ctx, &kafka.MetadataRequest{Topics: []string{"votes", "votes.dlq"}})
	if err != nil {
		t.Fatalf("metadata from %s: %v", bootstrap, err)
	}
	if meta.ClusterID != st.ClusterID {
		t.Errorf("the broker's cluster id is %s, the Kafka resource's %s", meta.ClusterID, st.ClusterID)
	}
	partitions := map[string]int{}
	for _, topic := range meta.Topics {
		if topic.Error != nil {
			t.Errorf("topic %s: %v", topic.Name, topic.Error)
		}
		partitions[topic.Name] = len(topic.Partitions)
		for _, p := range topic.Partitions {
			if len(p.Replicas) != 1 || p.Leader.ID != 0 {
				t.Errorf("%s/%d: replicas %v, leader %d; want broker 0 alone", topic.Name, p.ID, p.Replicas, p.Leader.ID)
			}
		}
	}
	if partitions["votes"] != 6 || partitions["votes.dlq"] != 1 {
		t.Errorf("partitions per topic at the broker: %v, want votes 6 and votes.dlq 1 (k8s/manifests/kafka.yaml)", partitions)
	}
	e.logf("broker %v (advertised), cluster %s: partitions %v", meta.Brokers, meta.ClusterID, partitions)

	// Their settings: what the KafkaTopic says, set on the topic by the topic operator (not the
	// broker's defaults), and what the Kafka's config says about every topic.
	configs, err := client.DescribeConfigs(e.ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: "votes", ConfigNames: []string{"retention.ms", "min.insync.replicas"}},
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: "votes.dlq", ConfigNames: []string{"min.insync.replicas"}},
	}})
	if err != nil {
		t.Fatalf("topic configs: %v", err)
	}
	got := map[string]string{}
	for _, res := range configs.Resources {
		if res.Error != nil {
			t.Errorf("configs of %s: %v", res.ResourceName, res.Error)
		}
		for _, c := range res.ConfigEntries {
			got[res.ResourceName+" "+c.ConfigName] = fmt.Sprintf("%s (source %d)", c.ConfigValue, c.ConfigSource)
		}
	}
	// Config sources (Kafka's DescribeConfigs): 1 the topic's own; 3 the cluster-wide default,
	// where Kafka 4 keeps the broker config's min.insync.replicas (in its metadata log), and 4
	// the broker's static config. 5, Kafka's own default, would mean the Kafka's config was lost.
	want := map[string][]string{
		"votes retention.ms":            {"604800000 (source 1)"},
		"votes min.insync.replicas":     {"1 (source 3)", "1 (source 4)"},
		"votes.dlq min.insync.replicas": {"1 (source 3)", "1 (source 4)"},
	}
	for k, v := range want {
		if !slices.Contains(v, got[k]) {
			t.Errorf("%s = %q, want one of %q", k, got[k], v)
		}
	}
	e.logf("topic settings at the broker: %v", got)

	// The broker serves votes: a record written with acks=all is read back from its partition.
	key, value := fmt.Sprintf("realnode-%d", time.Now().UnixNano()), []byte("a record through the real node")
	produced, err := client.Produce(e.ctx, &kafka.ProduceRequest{Topic: "votes", Partition: 2, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte(key)), Value: kafka.NewBytes(value)})})
	if err == nil {
		err = produced.Error
	}
	if err != nil {
		t.Fatalf("produce to votes/2: %v", err)
	}
	fetched, err := client.Fetch(e.ctx, &kafka.FetchRequest{Topic: "votes", Partition: 2, Offset: produced.BaseOffset, MaxBytes: 1 << 20})
	if err == nil {
		err = fetched.Error
	}
	if err != nil {
		t.Fatalf("fetch votes/2 at %d: %v", produced.BaseOffset, err)
	}
	rec, err := fetched.Records.ReadRecord()
	if err != nil {
		t.Fatalf("read votes/2 at %d: %v", produced.BaseOffset, err)
	}
	gotKey, _ := kafka.ReadAll(rec.Key)
	gotValue, _ := kafka.ReadAll(rec.Value)
	if rec.Offset != produced.BaseOffset || string(gotKey) != key || string(gotValue) != string(value) {
		t.Errorf("votes/2 at %d: offset %d key %q value %q; want key %q value %q", produced.BaseOffset, rec.Offset, gotKey, gotValue, key, value)
	}
	e.logf("votes/2: wrote offset %d with acks=all, read it back", produced.BaseOffset)
	e.pods("strimzi", "tally-kafka")
}

type condition struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func ready(cs []condition) bool {
	return slices.ContainsFunc(cs, func(c condition) bool { return c.Type == "Ready" && c.Status == "True" })
}

func (e *env) getJSON(into any, args ...string) {
	e.t.Helper()
	out := e.kubectl("", append(append([]string{"get"}, args...), "-o", "json")...)
	if err := json.Unmarshal([]byte(out), into); err != nil {
		e.t.Fatalf("kubectl get %s: %v", strings.Join(args, " "), err)
	}
}

// readRefs reads a render's refs: image name -> pinned reference.
func readRefs(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if name, ref, ok := strings.Cut(line, " "); ok {
			refs[name] = ref
		}
	}
	return refs
}

// kafkaClient reaches the brokers through the bootstrap Service and the names they advertise.
func kafkaClient() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(bootstrap), Transport: &kafka.Transport{Dial: dial}, Timeout: 20 * time.Second}
}
