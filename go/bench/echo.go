package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// echoServer is the bare gRPC baseline: tally.vote.v1.VoteService whose CastVote answers at
// once, with no validation, no id and no Kafka, so a run against it measures what gRPC itself
// (and the load generator) cost on this machine. It reports SERVING, so a grpc-front can sit in
// front of it too.
type echoServer struct {
	votev1.UnimplementedVoteServiceServer
}

func (echoServer) CastVote(_ context.Context, req *votev1.CastVoteRequest) (*votev1.CastVoteResponse, error) {
	return &votev1.CastVoteResponse{VoteId: req.GetVote().GetVoteId(), AcceptedAtUnixMs: req.GetVote().GetAcceptedAtUnixMs()}, nil
}

// runEcho is `bench grpc-echo`: it serves on 127.0.0.1 (a free port), prints "listening ADDR"
// on stdout and serves until SIGTERM. The benchmark runs it as a process of its own, as the
// gRPC producer is.
func runEcho() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	votev1.RegisterVoteServiceServer(srv, echoServer{})
	hs := health.NewServer()
	hs.SetServingStatus(votev1.VoteService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	return srv.Serve(ln)
}
