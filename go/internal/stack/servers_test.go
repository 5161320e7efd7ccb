package stack

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/queue"
)

// realConfig points at the servers' programs, which BUILD.bazel puts in the test's runfiles and
// names in STACK_* variables (workspace-relative runfiles paths).
func realConfig(t *testing.T) Config {
	t.Helper()
	path := func(name string) string {
		rel := os.Getenv(name)
		if rel == "" {
			t.Skipf("%s is not set: run this test with tools/bazel test", name)
		}
		return filepath.Join(os.Getenv("TEST_SRCDIR"), "_main", rel)
	}
	ports, err := FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		DataDir:     t.TempDir(),
		Ports:       ports,
		Java:        "/usr/bin/java",
		KafkaJars:   path("STACK_KAFKA_JARS"),
		KafkaLog4j:  path("STACK_KAFKA_LOG4J"),
		RedisServer: "/usr/bin/redis-server",
		FerretDB:    path("STACK_FERRETDB"),
	}
}

// Stopping leaves no port of ours listening, and starting again on the same data dir finds
// every server's data where it was.
func TestRestartKeepsDataAndFreesPorts(t *testing.T) {
	cfg := realConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	procs, err := cfg.Servers()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s, err := Start(ctx, &logs, procs)
	if err != nil {
		t.Fatalf("first start: %v\n%s", err, logs.String())
	}
	writeOne(ctx, t, cfg)
	s.Stop()
	if err := cfg.Ports.CheckFree(); err != nil {
		t.Fatalf("after Stop: %v", err)
	}

	s, err = Start(ctx, &logs, procs)
	if err != nil {
		t.Fatalf("second start: %v\n%s", err, logs.String())
	}
	defer s.Stop()
	readOne(ctx, t, cfg)
}

func writeOne(ctx context.Context, t *testing.T, cfg Config) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(cfg.KafkaAddr()), Topic: queue.VotesTopic, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("kept"), Value: []byte("across restarts")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	w.Close()

	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(host, strconv.Itoa(cfg.Ports.Redis))})
	defer rdb.Close()
	if err := rdb.HSet(ctx, "restart:test", "kept", "yes").Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}

	client := mongoClient(t, cfg)
	if _, err := client.Database("restart").Collection("test").InsertOne(ctx, bson.D{{Key: "_id", Value: "kept"}}); err != nil {
		t.Fatalf("mongo: %v", err)
	}
}

func readOne(ctx context.Context, t *testing.T, cfg Config) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{cfg.KafkaAddr()}, Topic: queue.VotesTopic, GroupID: "restart-test", StartOffset: kafka.FirstOffset,
	})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil || string(m.Key) != "kept" {
		t.Fatalf("kafka after restart: key %q, err %v", m.Key, err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(host, strconv.Itoa(cfg.Ports.Redis))})
	defer rdb.Close()
	if v, err := rdb.HGet(ctx, "restart:test", "kept").Result(); err != nil || v != "yes" {
		t.Fatalf("redis after restart: %q, %v", v, err)
	}

	client := mongoClient(t, cfg)
	n, err := client.Database("restart").Collection("test").CountDocuments(ctx, bson.D{{Key: "_id", Value: "kept"}})
	if err != nil || n != 1 {
		t.Fatalf("mongo after restart: %d documents, %v", n, err)
	}
}

func mongoClient(t *testing.T, cfg Config) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + net.JoinHostPort(host, strconv.Itoa(cfg.Ports.Mongo)) + "/"))
	if err != nil {
		t.Fatalf("mongo: %v", err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	return client
}

// A cluster stack: three nodes, every partition on each of them and all in sync, and acks=all
// writes go on once one node has shut down (min.insync.replicas 2) and stop with two down.
func TestKafkaClusterReplicatesEveryTopic(t *testing.T) {
	cfg := realConfig(t)
	cfg.KafkaNodes = KafkaClusterNodes
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	procs, err := cfg.Servers(KafkaName)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != KafkaClusterNodes {
		t.Fatalf("Servers(kafka) = %d processes, want the %d nodes", len(procs), KafkaClusterNodes)
	}
	var logs syncBuffer
	s, err := Start(ctx, &logs, procs)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	defer s.Stop()
	conn, err := kafka.DialContext(ctx, "tcp", cfg.KafkaAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(queue.VotesTopic, queue.DeadLetterTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if len(p.Replicas) != 3 || len(p.Isr) != 3 {
			t.Errorf("%s/%d: replicas %v, in sync %v; want all 3 nodes", p.Topic, p.ID, p.Replicas, p.Isr)
		}
	}
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(cfg.KafkaBrokers(), ",")...)}
	described, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: queue.VotesTopic, ConfigNames: []string{"min.insync.replicas"}},
	}})
	if err != nil || len(described.Resources) != 1 || len(described.Resources[0].ConfigEntries) != 1 {
		t.Fatalf("describe %s: %+v, %v", queue.VotesTopic, described, err)
	}
	if got := described.Resources[0].ConfigEntries[0].ConfigValue; got != "2" {
		t.Errorf("%s min.insync.replicas = %s, want 2", queue.VotesTopic, got)
	}

	write := func(key string) error {
		w := &kafka.Writer{
			Addr: kafka.TCP(strings.Split(cfg.KafkaBrokers(), ",")...), Topic: queue.VotesTopic,
			RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, MaxAttempts: 3,
			WriteTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		}
		defer w.Close()
		// Every partition, so every leader is asked.
		var msgs []kafka.Message
		for i := range 60 {
			msgs = append(msgs, kafka.Message{Key: []byte(key + strconv.Itoa(i)), Value: []byte("v")})
		}
		return w.WriteMessages(ctx, msgs...)
	}
	// A controlled shutdown moves its leaders before it exits.
	if err := s.StopOne(KafkaNodeName(3)); err != nil {
		t.Fatal(err)
	}
	if err := write("one-down-"); err != nil {
		t.Fatalf("acks=all with one of three nodes down: %v", err)
	}
	if err := s.KillOne(KafkaNodeName(2)); err != nil {
		t.Fatal(err)
	}
	if err := write("two-down-"); err == nil {
		t.Fatal("acks=all with two of three nodes down succeeded; min.insync.replicas 2 should refuse it")
	}
}
