package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tally-voting/tally/go/internal/vote"
)

// The gRPC route's two processes (go/cmd/grpc-producer, go/cmd/grpc-front): one pod in Kubernetes.
const (
	GRPCProducerName = "grpc-producer"
	GRPCFrontName    = "grpc-front"
)

// GRPCFrontURL is the base URL of the gRPC route's HTTP front, where votes are POSTed.
func (c Config) GRPCFrontURL() string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(c.Ports.GRPCFront))
}

// GRPCProducerAddr is the gRPC producer's address.
func (c Config) GRPCProducerAddr() string {
	return net.JoinHostPort(host, strconv.Itoa(c.Ports.GRPCProducer))
}

func (c Config) grpcProducer() Process {
	httpAddr := net.JoinHostPort(host, strconv.Itoa(c.Ports.GRPCProducerHTTP))
	return Process{
		Name: GRPCProducerName,
		Args: []string{c.GRPCProducer},
		Env: []string{
			"GRPC_ADDR=" + c.GRPCProducerAddr(),
			"HTTP_ADDR=" + httpAddr,
			"KAFKA_BROKERS=" + c.KafkaBrokers(),
			"TALLY_BALLOT=" + c.ballotSetting(),
		},
		Needs: []string{KafkaName},
		Addr:  c.GRPCProducerAddr() + " (health, metrics: http://" + httpAddr + ")",
		// SERVING only once Kafka is reachable: the producer checks it itself.
		Ready: func(ctx context.Context) error { return grpcServing(ctx, c.GRPCProducerAddr()) },
	}
}

func (c Config) grpcFront() Process {
	return Process{
		Name: GRPCFrontName,
		Args: []string{c.GRPCFront},
		Env: []string{
			"HTTP_ADDR=" + net.JoinHostPort(host, strconv.Itoa(c.Ports.GRPCFront)),
			"PRODUCER_GRPC_TARGET=" + c.GRPCProducerAddr(),
		},
		Needs: []string{GRPCProducerName},
		Addr:  c.GRPCFrontURL(),
		Ready: func(ctx context.Context) error { return HTTPOK(ctx, c.GRPCFrontURL()+"/readyz") },
	}
}

// ballotSetting is TALLY_BALLOT for a process that can open c.Ballot where it is: the gRPC
// producer, the API.
func (c Config) ballotSetting() string {
	if c.Ballot == "" {
		return vote.BallotOff
	}
	return c.Ballot
}

// grpcServing asks the standard health service for the whole server's status.
func grpcServing(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: %s", resp.GetStatus())
	}
	return nil
}

// HTTPOK is a GET that must answer 200: the readiness check of HTTP services.
func HTTPOK(ctx context.Context, url string) error { return ClientOK(ctx, http.DefaultClient, url) }

// ClientOK is HTTPOK through client (one that accepts a component's self-signed certificate, say).
func ClientOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
