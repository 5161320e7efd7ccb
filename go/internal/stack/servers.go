package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Names of the processes, as used by --servers, in logs and by tests. KafkaName is Kafka's first
// node, the only one unless Config.KafkaNodes asks for a cluster (KafkaNodeName names the others).
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
	// KafkaPeers are the other nodes' ports, used when Config.KafkaNodes is KafkaClusterNodes.
	KafkaPeers [KafkaClusterNodes - 1]KafkaNodePorts
	Redis      int
	Mongo      int
	// Tally's services.
	GRPCFront    int // HTTP, the gRPC route's front
	GRPCProducer int // gRPC
	Consumer     int // HTTP: health and metrics
	WasmProducer int // HTTP
	API          int // HTTP
	Web          int // HTTP: the webapp and its /api proxy

	GRPCProducerHTTP int // HTTP: the gRPC producer's health and metrics
}

// KafkaNodePorts are one Kafka node's listeners: clients' and the KRaft controllers'.
type KafkaNodePorts struct {
	Broker     int
	Controller int
}

// DefaultPorts are the usual ports, used by //:up unless flags say otherwise (docs/local.md).
var DefaultPorts = Ports{
	Kafka: 9092, KafkaController: 9093, Redis: 6379, Mongo: 27017,
	KafkaPeers: [KafkaClusterNodes - 1]KafkaNodePorts{{9192, 9193}, {9292, 9293}},
	GRPCFront:  8080, GRPCProducer: 50051, GRPCProducerHTTP: 9101, Consumer: 9102, WasmProducer: 8081, API: 3000, Web: 8000,
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
		{"kafka", &p.Kafka}, {"kafka controller", &p.KafkaController},
		{"kafka-2", &p.KafkaPeers[0].Broker}, {"kafka-2 controller", &p.KafkaPeers[0].Controller},
		{"kafka-3", &p.KafkaPeers[1].Broker}, {"kafka-3 controller", &p.KafkaPeers[1].Controller},
		{"redis", &p.Redis}, {"mongo", &p.Mongo},
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
	// KafkaNodes is 1 (the default when 0: one broker, fastest to start) or KafkaClusterNodes,
	// a cluster like the deployed one: every topic replicated on each node, min.insync.replicas
	// from queue.MinInsync, so acks=all writes go on while one node is down.
	KafkaNodes int
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
		"KAFKA_BROKERS=" + c.KafkaBrokers(),
		"REDIS_URL=redis://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.Redis)),
		"MONGO_URL=mongodb://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.Mongo)) + "/",
		"GRPC_FRONT_URL=" + c.GRPCFrontURL(),
		"WASM_PRODUCER_URL=" + c.WasmProducerURL(),
		"API_URL=" + c.APIURL(),
		"WEB_URL=" + c.WebURL(),
	}
}

// definition is one process the stack knows how to run.
type definition struct {
	name string
	def  func() Process
}

// catalog lists every process the stack knows, in start order. A Tally service adds itself
// here with its definition in a file of its own (services_<name>.go).
func (c Config) catalog() []definition {
	var defs []definition
	for id := 1; id <= c.kafkaNodes(); id++ {
		defs = append(defs, definition{KafkaNodeName(id), func() Process { return c.kafka(id) }})
	}
	return append(defs, []definition{
		{RedisName, c.redis},
		{MongoName, c.mongo},
		{GRPCProducerName, c.grpcProducer},
		{GRPCFrontName, c.grpcFront},
		{WasmProducerName, c.wasmProducer},
		{ConsumerName, c.consumer},
		{APIName, c.api},
		{WebName, c.web},
	}...)
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
	if n := c.KafkaNodes; n != 0 && n != 1 && n != KafkaClusterNodes {
		return nil, fmt.Errorf("%d Kafka nodes: want 1 or %d", n, KafkaClusterNodes)
	}
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
		// Kafka is every node of it: they start together and form one cluster.
		if name == KafkaName {
			for id := 2; id <= c.kafkaNodes(); id++ {
				if err := add(KafkaNodeName(id), name); err != nil {
					return err
				}
			}
		}
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
