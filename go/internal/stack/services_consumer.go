package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// ConsumerName is the consumer's process (go/cmd/consumer).
const ConsumerName = "consumer"

func (c Config) consumer() Process { return c.ConsumerProcess(ConsumerName, c.Ports.Consumer) }

// ConsumerProcess is a consumer replica named name serving health and metrics on httpPort: the
// stack runs one, tests start more to see the group rebalance.
func (c Config) ConsumerProcess(name string, httpPort int) Process {
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(httpPort))
	return Process{
		Name:  name,
		Args:  []string{c.Consumer},
		Env:   append(c.Env(), "HTTP_ADDR="+net.JoinHostPort(host, strconv.Itoa(httpPort))),
		Needs: []string{KafkaName, RedisName, MongoName},
		Addr:  base + "/metrics",
		// Ready once Kafka, Redis and MongoDB answer it and no write of its is failing.
		Ready: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s/readyz: %s", base, resp.Status)
			}
			return nil
		},
	}
}
