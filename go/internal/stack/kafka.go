package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/tally-voting/tally/go/internal/queue"
)

// KafkaClusterNodes is the size of a Kafka cluster like the deployed one (k8s/settings.yaml's
// kafka.brokers): KRaft nodes that are each controller and broker.
const KafkaClusterNodes = 3

// KafkaNodeName is the process name of Kafka's node id (1-based): KafkaName for the first, so a
// one-node stack keeps its usual name, "kafka-<id>" for the others.
func KafkaNodeName(id int) string {
	if id == 1 {
		return KafkaName
	}
	return KafkaName + "-" + strconv.Itoa(id)
}

// kafkaNodes is how many Kafka nodes the stack runs.
func (c Config) kafkaNodes() int { return max(c.KafkaNodes, 1) }

// kafkaPorts are node id's listeners.
func (c Config) kafkaPorts(id int) KafkaNodePorts {
	if id == 1 {
		return KafkaNodePorts{Broker: c.Ports.Kafka, Controller: c.Ports.KafkaController}
	}
	return c.Ports.KafkaPeers[id-2]
}

// KafkaNodeAddr is node id's client address.
func (c Config) KafkaNodeAddr(id int) string {
	return net.JoinHostPort(host, strconv.Itoa(c.kafkaPorts(id).Broker))
}

// KafkaAddr is the first node's address: a bootstrap address, all of Kafka with one node.
func (c Config) KafkaAddr() string { return c.KafkaNodeAddr(1) }

// KafkaBrokers is every node's address, comma-separated: KAFKA_BROKERS of the services, so a
// client that starts while one node is down still finds the cluster.
func (c Config) KafkaBrokers() string {
	var addrs []string
	for id := 1; id <= c.kafkaNodes(); id++ {
		addrs = append(addrs, c.KafkaNodeAddr(id))
	}
	return strings.Join(addrs, ",")
}

// TopicSettings are what every Tally topic gets on this stack's Kafka: the replication factor
// and min.insync.replicas of the contract in go/internal/queue.
func (c Config) TopicSettings() (replication, minInsync int) {
	return queue.Replication(c.kafkaNodes()), queue.MinInsync(c.kafkaNodes())
}

// kafka is node id. In a cluster the nodes have no Needs on each other: they start together
// (two are a KRaft quorum), and the first node is ready once Tally's topics exist with a replica
// on every node, which takes all of them registered.
func (c Config) kafka(id int) Process {
	name := KafkaNodeName(id)
	dir := filepath.Join(c.DataDir, name)
	props := filepath.Join(dir, "server.properties")
	classpath := filepath.Join(c.KafkaJars, "*")
	p := Process{
		Name: name,
		Addr: c.KafkaNodeAddr(id),
		Args: []string{
			c.Java, "-Xms256m", "-Xmx768m",
			"-Dlog4j2.configurationFile=" + c.KafkaLog4j,
			"-cp", classpath, "kafka.Kafka", props,
		},
		Setup: func(ctx context.Context) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			// Written on every start so ports can change; the data under logs/ survives.
			if err := os.WriteFile(props, []byte(c.kafkaProperties(id, dir)), 0o644); err != nil {
				return err
			}
			return c.formatKafkaOnce(ctx, dir, props, classpath)
		},
		Ready: func(ctx context.Context) error { return brokerRegistered(ctx, c.KafkaNodeAddr(id), id) },
	}
	if id == 1 {
		replication, minInsync := c.TopicSettings()
		p.Ready = func(ctx context.Context) error {
			return EnsureTopics(ctx, c.KafkaAddr(), replication, minInsync)
		}
	}
	return p
}

// kafkaProperties is node id, broker and KRaft controller, on loopback only. A cluster's settings
// are the manifests' (k8s/manifests/kafka.yaml): every internal topic replicated like Tally's.
func (c Config) kafkaProperties(id int, dir string) string {
	replication, minInsync := c.TopicSettings()
	var voters []string
	for n := 1; n <= c.kafkaNodes(); n++ {
		voters = append(voters, fmt.Sprintf("%d@%s:%d", n, host, c.kafkaPorts(n).Controller))
	}
	ports := c.kafkaPorts(id)
	return fmt.Sprintf(`process.roles=broker,controller
node.id=%[1]d
controller.quorum.voters=%[2]s
listeners=PLAINTEXT://%[3]s:%[4]d,CONTROLLER://%[3]s:%[5]d
advertised.listeners=PLAINTEXT://%[3]s:%[4]d
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=%[6]s
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=%[7]d
min.insync.replicas=%[8]d
offsets.topic.replication.factor=%[7]d
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=%[7]d
transaction.state.log.min.isr=%[8]d
share.coordinator.state.topic.replication.factor=%[7]d
share.coordinator.state.topic.min.isr=%[8]d
group.initial.rebalance.delay.ms=0
`, id, strings.Join(voters, ","), host, ports.Broker, ports.Controller, filepath.Join(dir, "logs"),
		replication, minInsync)
}

// formatKafkaOnce formats a node's storage the first time it starts; every node of a cluster
// gets the same cluster id, which the first node to be formatted draws and leaves in DataDir.
func (c Config) formatKafkaOnce(ctx context.Context, dir, props, classpath string) error {
	if _, err := os.Stat(filepath.Join(dir, "logs", "meta.properties")); err == nil {
		return nil
	}
	clusterID, err := c.kafkaClusterID()
	if err != nil {
		return err
	}
	// The "=" form: a random id may start with "-", which the parser would take for an option.
	cmd := exec.CommandContext(ctx, c.Java, "-Dlog4j2.configurationFile="+c.KafkaLog4j,
		"-cp", classpath, "kafka.tools.StorageTool", "format", "--cluster-id="+clusterID, "--config="+props)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format kafka storage: %w\n%s", err, out)
	}
	return nil
}

// kafkaClusterID reads the stack's Kafka cluster id, drawing it on first use. Nodes are set up
// one after another (Stack.start), so no two draw at once.
func (c Config) kafkaClusterID() (string, error) {
	path := filepath.Join(c.DataDir, "kafka-cluster-id")
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("kafka cluster id: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	clusterID := base64.RawURLEncoding.EncodeToString(id)
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(clusterID+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("kafka cluster id: %w", err)
	}
	return clusterID, nil
}

// brokerRegistered returns nil once the node at addr serves clients and lists itself among the
// cluster's brokers (the controllers have unfenced it).
func brokerRegistered(ctx context.Context, addr string, id int) error {
	conn, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial kafka: %w", err)
	}
	defer conn.Close()
	brokers, err := conn.Brokers()
	if err != nil {
		return fmt.Errorf("kafka brokers: %w", err)
	}
	if !slices.ContainsFunc(brokers, func(b kafka.Broker) bool { return b.ID == id }) {
		return fmt.Errorf("node %d is not among the brokers yet", id)
	}
	return nil
}

// EnsureTopics creates Tally's topics with the given replication factor and min.insync.replicas
// if they are missing, and returns nil once the broker reports every partition of them with a
// leader and all replicas in sync.
func EnsureTopics(ctx context.Context, addr string, replication, minInsync int) error {
	conn, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial kafka: %w", err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find kafka controller: %w", err)
	}
	ctrl, err := (&kafka.Dialer{}).DialContext(ctx, "tcp",
		net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("dial kafka controller: %w", err)
	}
	defer ctrl.Close()
	settings := []kafka.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(minInsync)}}
	topics := []kafka.TopicConfig{
		{Topic: queue.VotesTopic, NumPartitions: queue.VotesPartitions, ReplicationFactor: replication, ConfigEntries: settings},
		{Topic: queue.DeadLetterTopic, NumPartitions: queue.DeadLetterPartitions, ReplicationFactor: replication, ConfigEntries: settings},
	}
	if err := ctrl.CreateTopics(topics...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range topics {
		parts, err := conn.ReadPartitions(t.Topic)
		if err != nil {
			return fmt.Errorf("read partitions of %s: %w", t.Topic, err)
		}
		if len(parts) != t.NumPartitions {
			return fmt.Errorf("topic %s has %d partitions, want %d", t.Topic, len(parts), t.NumPartitions)
		}
		for _, p := range parts {
			if p.Leader.Host == "" {
				return fmt.Errorf("topic %s partition %d has no leader yet", t.Topic, p.ID)
			}
			if len(p.Isr) != replication {
				return fmt.Errorf("topic %s partition %d has %d replicas in sync, want %d", t.Topic, p.ID, len(p.Isr), replication)
			}
		}
	}
	return nil
}
