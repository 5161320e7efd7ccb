package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health is the consumer's readiness: a set of named checks, each failing or not. The consumer is
// ready when none fails. Checks are registered failing ("not checked yet") so a fresh process is
// not ready before each dependency answered once.
type Health struct {
	mu      sync.Mutex
	failing map[string]error
}

// NewHealth returns a Health whose named checks fail until they are first Set to nil.
func NewHealth(checks ...string) *Health {
	h := &Health{failing: map[string]error{}}
	for _, c := range checks {
		h.failing[c] = errors.New("not checked yet")
	}
	return h
}

// Set records the outcome of check: nil clears it.
func (h *Health) Set(check string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.failing, check)
	} else {
		h.failing[check] = err
	}
}

// Err is nil when ready, or says which checks fail and why.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failing) == 0 {
		return nil
	}
	var lines []string
	for name, err := range h.failing {
		lines = append(lines, fmt.Sprintf("%s: %v", name, err))
	}
	slices.Sort(lines)
	return errors.New(strings.Join(lines, "; "))
}

// Watch runs probe every interval until ctx ends and records its outcome as check.
func (h *Health) Watch(ctx context.Context, check string, interval time.Duration, probe func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.Set(check, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
