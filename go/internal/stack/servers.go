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
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tally-voting/tally/go/internal/queue"
)

// Names of the processes, as used by --servers, in logs and by tests.
const (
	KafkaName = "kafka"
	RedisName = "redis"
	MongoName = "mongo"
)

// ServerNames lists the third-party servers, in start order: what tests get by default.
var ServerNames = []string{KafkaName, RedisName, MongoName}

// Ports of every process of the stack.
type Ports struct {
	Kafka           int
	KafkaController int
	Redis           int
	Mongo           int
	// Tally's services.
	GRPCFront    int // HTTP, the gRPC route's front
	GRPCProducer int // gRPC
	Consumer     int // HTTP: health and metrics
	WasmProducer int // HTTP
	API          int // HTTP
	Web          int // HTTP: the webapp and its /api proxy

	GRPCProducerHTTP int // HTTP: the gRPC producer's health and metrics
}

// DefaultPorts are the usual ports, used by //:up unless flags say otherwise (docs/local.md).
var DefaultPorts = Ports{
	Kafka: 9092, KafkaController: 9093, Redis: 6379, Mongo: 27017,
	GRPCFront: 8080, GRPCProducer: 50051, GRPCProducerHTTP: 9101, Consumer: 9102, WasmProducer: 8081, API: 3000, Web: 8000,
}

// named lists the ports with their names, for error messages and FreePorts.
func (p *Ports) named() []struct {
	name string
	port *int
} {
	return []struct {
		name string
		port *int
	}{
		{"kafka", &p.Kafka}, {"kafka controller", &p.KafkaController}, {"redis", &p.Redis}, {"mongo", &p.Mongo},
		{"grpc-front", &p.GRPCFront}, {"grpc-producer", &p.GRPCProducer},
		{"grpc-producer http", &p.GRPCProducerHTTP}, {"consumer", &p.Consumer},
		{"wasm-producer", &p.WasmProducer}, {"api", &p.API}, {"web", &p.Web},
	}
}

// Config says where the processes keep data, which ports they use and where their programs are.
type Config struct {
	// DataDir holds one directory per server; removing it wipes every server's state.
	DataDir string
	Ports   Ports
	// Java runs the Kafka broker from the jars in KafkaJars, logging per KafkaLog4j.
	Java       string
	KafkaJars  string
	KafkaLog4j string
	// RedisServer and FerretDB are the other two servers' programs.
	RedisServer string
	FerretDB    string
	// GRPCFront and GRPCProducer are the gRPC route's programs (services_producer.go).
	GRPCFront    string
	GRPCProducer string
	// Consumer is the consumer's program (services_consumer.go).
	Consumer string
	// WasmEdge runs WasmProducer, the Wasm producer's AOT-compiled module (services_wasmproducer.go).
	WasmEdge     string
	WasmProducer string
	// Node runs API, the Node API's package directory, with APINodeModules (services_api.go).
	Node           string
	API            string
	APINodeModules string
	// Web is the webapp's server, serving WebDist, the built Vue app (services_web.go).
	Web     string
	WebDist string
	// Ballot is the contest's ballot (proto/ballot.json) both producers check votes against and
	// the API serves; empty turns the ballot off.
	Ballot string
}

const host = "127.0.0.1"

// Env is what a client of the servers needs, as environment variables (the services read these).
func (c Config) Env() []string {
	return []string{
		"KAFKA_BROKERS=" + c.KafkaAddr(),
		"REDIS_URL=redis://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.Redis)),
		"MONGO_URL=mongodb://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.Mongo)) + "/",
		"GRPC_FRONT_URL=" + c.GRPCFrontURL(),
		"WASM_PRODUCER_URL=" + c.WasmProducerURL(),
		"API_URL=" + c.APIURL(),
		"WEB_URL=" + c.WebURL(),
	}
}

// KafkaAddr is the broker's bootstrap address.
func (c Config) KafkaAddr() string { return net.JoinHostPort(host, strconv.Itoa(c.Ports.Kafka)) }

// definition is one process the stack knows how to run.
type definition struct {
	name string
	def  func() Process
}

// catalog lists every process the stack knows, in start order. A Tally service adds itself
// here with its definition in a file of its own (services_<name>.go).
func (c Config) catalog() []definition {
	return []definition{
		{KafkaName, c.kafka},
		{RedisName, c.redis},
		{MongoName, c.mongo},
		{GRPCProducerName, c.grpcProducer},
		{GRPCFrontName, c.grpcFront},
		{WasmProducerName, c.wasmProducer},
		{ConsumerName, c.consumer},
		{APIName, c.api},
		{WebName, c.web},
	}
}

// Names lists every process the stack knows, in start order: what //:up starts.
func (c Config) Names() []string {
	var names []string
	for _, d := range c.catalog() {
		names = append(names, d.name)
	}
	return names
}

// Servers returns the definitions of the named processes and of every process they need,
// in start order (the servers when names is empty).
func (c Config) Servers(names ...string) ([]Process, error) {
	if len(names) == 0 {
		names = ServerNames
	}
	byName := map[string]Process{}
	for _, d := range c.catalog() {
		byName[d.name] = d.def()
	}
	want := map[string]bool{}
	var add func(name, by string) error
	add = func(name, by string) error {
		p, ok := byName[name]
		if !ok {
			if by != "" {
				return fmt.Errorf("%s needs unknown process %q", by, name)
			}
			return fmt.Errorf("unknown process %q (known: %s)", name, strings.Join(c.Names(), ", "))
		}
		if want[name] {
			return nil
		}
		want[name] = true
		for _, need := range p.Needs {
			if err := add(need, name); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range names {
		if err := add(name, ""); err != nil {
			return nil, err
		}
	}
	var procs []Process
	for _, d := range c.catalog() {
		if want[d.name] {
			procs = append(procs, byName[d.name])
		}
	}
	return procs, nil
}

func (c Config) kafka() Process {
	dir := filepath.Join(c.DataDir, KafkaName)
	props := filepath.Join(dir, "server.properties")
	classpath := filepath.Join(c.KafkaJars, "*")
	return Process{
		Name: KafkaName,
		Addr: c.KafkaAddr(),
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
			if err := os.WriteFile(props, []byte(c.kafkaProperties(dir)), 0o644); err != nil {
				return err
			}
			return c.formatKafkaOnce(ctx, dir, props, classpath)
		},
		Ready: func(ctx context.Context) error { return EnsureTopics(ctx, c.KafkaAddr()) },
	}
}

// kafkaProperties is a single KRaft node acting as broker and controller, on loopback only.
func (c Config) kafkaProperties(dir string) string {
	return fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@%[1]s:%[3]d
listeners=PLAINTEXT://%[1]s:%[2]d,CONTROLLER://%[1]s:%[3]d
advertised.listeners=PLAINTEXT://%[1]s:%[2]d
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=%[4]s
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`, host, c.Ports.Kafka, c.Ports.KafkaController, filepath.Join(dir, "logs"))
}

func (c Config) formatKafkaOnce(ctx context.Context, dir, props, classpath string) error {
	if _, err := os.Stat(filepath.Join(dir, "logs", "meta.properties")); err == nil {
		return nil
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	clusterID := base64.RawURLEncoding.EncodeToString(id)
	// The "=" form: a random id may start with "-", which the parser would take for an option.
	cmd := exec.CommandContext(ctx, c.Java, "-Dlog4j2.configurationFile="+c.KafkaLog4j,
		"-cp", classpath, "kafka.tools.StorageTool", "format", "--cluster-id="+clusterID, "--config="+props)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format kafka storage: %w\n%s", err, out)
	}
	return nil
}

// EnsureTopics creates Tally's topics if they are missing and returns nil once the broker
// reports every partition of them with a leader.
func EnsureTopics(ctx context.Context, addr string) error {
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
	topics := []kafka.TopicConfig{
		{Topic: queue.VotesTopic, NumPartitions: queue.VotesPartitions, ReplicationFactor: 1},
		{Topic: queue.DeadLetterTopic, NumPartitions: queue.DeadLetterPartitions, ReplicationFactor: 1},
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
		}
	}
	return nil
}

func (c Config) redis() Process {
	dir := filepath.Join(c.DataDir, RedisName)
	addr := net.JoinHostPort(host, strconv.Itoa(c.Ports.Redis))
	return Process{
		Name: RedisName,
		Addr: "redis://" + addr,
		// The consumer's applied-offset watermarks live beside the counts, so both must survive
		// a restart together: append-only file, fsync every second.
		Args: []string{
			c.RedisServer, "--bind", host, "--port", strconv.Itoa(c.Ports.Redis),
			"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
			"--protected-mode", "yes", "--loglevel", "warning",
		},
		Setup: func(context.Context) error { return os.MkdirAll(dir, 0o755) },
		Ready: func(ctx context.Context) error {
			client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			defer client.Close()
			return client.Ping(ctx).Err()
		},
	}
}

func (c Config) mongo() Process {
	dir := filepath.Join(c.DataDir, MongoName)
	addr := net.JoinHostPort(host, strconv.Itoa(c.Ports.Mongo))
	return Process{
		Name:  MongoName,
		Addr:  "mongodb://" + addr + "/",
		Args:  []string{c.FerretDB, "-listen", addr, "-data-dir", dir},
		Setup: func(context.Context) error { return os.MkdirAll(dir, 0o755) },
		Ready: func(ctx context.Context) error {
			client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr + "/").
				SetServerSelectionTimeout(2 * time.Second))
			if err != nil {
				return err
			}
			defer client.Disconnect(context.Background())
			return client.Ping(ctx, nil)
		},
	}
}
