package stack

import (
	"context"
	"net"
	"strconv"
)

// WasmProducerName is the Wasm route's producer (rust/): the AOT-compiled module on WasmEdge.
const WasmProducerName = "wasm-producer"

// WasmProducerURL is the base URL of the Wasm producer, where votes are POSTed.
func (c Config) WasmProducerURL() string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.WasmProducer))
}

func (c Config) wasmProducer() Process {
	return Process{
		Name: WasmProducerName,
		// WasmEdge 0.17 interprets unless told to run the AOT code the module carries (5x slower).
		Args: []string{
			c.WasmEdge, "--run-mode", "aot",
			"--env", "LISTEN_ADDR=" + net.JoinHostPort(host, strconv.Itoa(c.Ports.WasmProducer)),
			"--env", "KAFKA_BROKERS=" + c.KafkaAddr(),
			c.WasmProducer,
		},
		Needs: []string{KafkaName},
		Addr:  c.WasmProducerURL(),
		Ready: func(ctx context.Context) error { return HTTPOK(ctx, c.WasmProducerURL()+"/readyz") },
	}
}
