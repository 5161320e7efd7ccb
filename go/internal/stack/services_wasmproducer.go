package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// WasmProducerName is the Wasm route's producer (rust/): the AOT-compiled module on WasmEdge.
const WasmProducerName = "wasm-producer"

// WasmProducerURL is the base URL of the Wasm producer, where votes are POSTed.
func (c Config) WasmProducerURL() string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.WasmProducer))
}

// clientLimitVariables are the producers' settings for hostile clients (docs/api.md).
var clientLimitVariables = []string{
	"HTTP_HEADER_TIMEOUT", "HTTP_BODY_TIMEOUT", "HTTP_IDLE_TIMEOUT", "HTTP_MAX_CONNECTIONS",
	"RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST", "TRUSTED_PROXY_HOPS", "RATE_LIMIT_MAX_CLIENTS",
}

func (c Config) wasmProducer() Process {
	// The module reads the ballot through a preopened directory, which WASI will not leave by a
	// symlink (Bazel's runfiles are symlinks): it gets a copy in a directory of its own.
	ballotDir := filepath.Join(c.DataDir, WasmProducerName, "ballot")
	ballot := filepath.Join(ballotDir, "ballot.json")
	args := []string{
		c.WasmEdge, "--run-mode", "aot",
		"--env", "LISTEN_ADDR=" + net.JoinHostPort(host, strconv.Itoa(c.Ports.WasmProducer)),
		"--env", "KAFKA_BROKERS=" + c.KafkaBrokers(),
	}
	// WasmEdge gives the module only the variables named here: the client limits pass through
	// from the supervisor's environment, as the Go front inherits them.
	for _, name := range clientLimitVariables {
		if v, ok := os.LookupEnv(name); ok {
			args = append(args, "--env", name+"="+v)
		}
	}
	if c.Ballot == "" {
		args = append(args, "--env", "TALLY_BALLOT=off")
	} else {
		args = append(args, "--dir", ballotDir+":"+ballotDir, "--env", "TALLY_BALLOT="+ballot)
	}
	return Process{
		Name: WasmProducerName,
		// WasmEdge 0.17 interprets unless told to run the AOT code the module carries (5x slower).
		// The shell raises the open-file limit to the hard one first: Go raised its own at start
		// but gives children the original (often 1024), fewer than HTTP_MAX_CONNECTIONS.
		Args:  append([]string{"/bin/sh", "-c", `ulimit -n "$(ulimit -H -n)" && exec "$@"`, "sh"}, append(args, c.WasmProducer)...),
		Needs: []string{KafkaName},
		Addr:  c.WasmProducerURL(),
		Setup: func(context.Context) error {
			if c.Ballot == "" {
				return nil
			}
			data, err := os.ReadFile(c.Ballot)
			if err != nil {
				return fmt.Errorf("wasm producer's ballot: %w", err)
			}
			if err := os.MkdirAll(ballotDir, 0o755); err != nil {
				return fmt.Errorf("wasm producer's ballot: %w", err)
			}
			return os.WriteFile(ballot, data, 0o644)
		},
		Ready: func(ctx context.Context) error { return HTTPOK(ctx, c.WasmProducerURL()+"/readyz") },
	}
}
