package queue

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestReachableFailsFastWithoutKafka(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Reachable(ctx, []string{addr}); err == nil {
		t.Fatal("Reachable = nil with no broker")
	}
	if err := Reachable(ctx, nil); err == nil {
		t.Fatal("Reachable = nil with no brokers configured")
	}
}
