package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	votev1 "github.com/tally-voting/tally/proto/vote/v1"
)

// Target is where votes are cast: a producer's HTTP API or a gRPC VoteService.
type Target interface {
	// Cast sends one vote and returns nil when it was accepted.
	Cast(ctx context.Context, v *Vote) error
	// Close releases the target's connections.
	Close()
}

// StatusError is an HTTP answer other than 202.
type StatusError struct{ Code int }

func (e StatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Code) }

// HTTP casts votes with POST <base>/votes over a pool of at most conns keep-alive connections.
type HTTP struct {
	url    string
	client *http.Client
}

// NewHTTP returns a target for the producer API at base (e.g. http://127.0.0.1:8080).
func NewHTTP(base string, conns int) *HTTP {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &HTTP{url: strings.TrimRight(base, "/") + "/votes", client: &http.Client{Transport: t, Timeout: 30 * time.Second}}
}

// Cast posts v and reads the whole answer, so the connection is reused.
func (h *HTTP) Cast(ctx context.Context, v *Vote) error { return h.CastKeyed(ctx, v, "") }

// CastKeyed posts v with an Idempotency-Key (the vote's id; none when key is empty).
func (h *HTTP) CastKeyed(ctx context.Context, v *Vote, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(v.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return StatusError{resp.StatusCode}
	}
	return err
}

// Close drops the idle connections.
func (h *HTTP) Close() { h.client.CloseIdleConnections() }

// GRPC casts votes with tally.vote.v1.VoteService/CastVote, every call multiplexed over one
// connection, as the gRPC route's front does.
type GRPC struct {
	conn   *grpc.ClientConn
	client votev1.VoteServiceClient
}

// NewGRPC returns a target for the VoteService at addr (host:port).
func NewGRPC(addr string) (*GRPC, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &GRPC{conn: conn, client: votev1.NewVoteServiceClient(conn)}, nil
}

// Cast calls CastVote with v.
func (g *GRPC) Cast(ctx context.Context, v *Vote) error {
	_, err := g.client.CastVote(ctx, &votev1.CastVoteRequest{Vote: &votev1.Vote{
		Name: v.Band, Album: v.Title, Year: v.Year, Rank: v.Rank,
	}})
	return err
}

// Close closes the connection.
func (g *GRPC) Close() { g.conn.Close() }
