// Package reqlog gathers what a request's handler wants said in the one log line its server
// writes per request (HTTP or gRPC): the middleware opens a bag, handlers add to it.
package reqlog

import (
	"context"
	"log/slog"
	"sync"
)

type bagKey struct{}

type bag struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

// Open returns a context carrying an empty bag for one request.
func Open(ctx context.Context) context.Context {
	return context.WithValue(ctx, bagKey{}, &bag{})
}

// Add puts attributes in the request's bag; without one (a context not from Open) it does nothing.
func Add(ctx context.Context, attrs ...slog.Attr) {
	b, ok := ctx.Value(bagKey{}).(*bag)
	if !ok {
		return
	}
	b.mu.Lock()
	b.attrs = append(b.attrs, attrs...)
	b.mu.Unlock()
}

// Attrs returns what the handlers added, in order.
func Attrs(ctx context.Context) []slog.Attr {
	b, ok := ctx.Value(bagKey{}).(*bag)
	if !ok {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]slog.Attr(nil), b.attrs...)
}
