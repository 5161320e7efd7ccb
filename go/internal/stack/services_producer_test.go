package stack

import (
	"slices"
	"strings"
	"testing"
)

// Asking for the front brings what it needs, in start order, wired to each other's ports.
func TestGRPCRouteDefinitions(t *testing.T) {
	cfg := Config{Ports: DefaultPorts, GRPCFront: "/bin/front", GRPCProducer: "/bin/producer"}
	procs, err := cfg.Servers(GRPCFrontName)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]Process{}
	for _, p := range procs {
		names = append(names, p.Name)
		byName[p.Name] = p
	}
	if !slices.Equal(names, []string{KafkaName, GRPCProducerName, GRPCFrontName}) {
		t.Fatalf("processes %v", names)
	}
	producer, front := byName[GRPCProducerName], byName[GRPCFrontName]
	for _, want := range []string{"GRPC_ADDR=127.0.0.1:50051", "HTTP_ADDR=127.0.0.1:9101", "KAFKA_BROKERS=127.0.0.1:9092"} {
		if !slices.Contains(producer.Env, want) {
			t.Errorf("producer env %v lacks %s", producer.Env, want)
		}
	}
	for _, want := range []string{"HTTP_ADDR=127.0.0.1:8080", "PRODUCER_GRPC_TARGET=127.0.0.1:50051"} {
		if !slices.Contains(front.Env, want) {
			t.Errorf("front env %v lacks %s", front.Env, want)
		}
	}
	if producer.Args[0] != "/bin/producer" || front.Args[0] != "/bin/front" || producer.Ready == nil || front.Ready == nil {
		t.Errorf("programs or readiness missing: %+v %+v", producer, front)
	}
	if !slices.Contains(cfg.Env(), "GRPC_FRONT_URL=http://127.0.0.1:8080") || !strings.HasPrefix(front.Addr, "http://") {
		t.Errorf("front URL not exported: %v, %s", cfg.Env(), front.Addr)
	}
}
