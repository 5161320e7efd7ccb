// Package readiness is whether a process is ready to serve: named checks of what it depends on,
// each failing or not, most of them probed periodically by Watch; ready means none fails. The
// consumer and the gRPC producer answer /readyz from it, and the gRPC producer's standard gRPC
// health service follows it (Follow).
package readiness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

var errNotChecked = errors.New("not checked yet")

// Checks are a process's readiness checks.
type Checks struct {
	mu        sync.Mutex
	failing   map[string]error
	ready     bool
	followers []func(ready bool)
}

// New returns checks whose named checks fail ("not checked yet") until first Set to nil, so a
// fresh process is not ready before each dependency has answered once.
func New(checks ...string) *Checks {
	c := &Checks{failing: map[string]error{}}
	for _, name := range checks {
		c.failing[name] = errNotChecked
	}
	c.ready = len(c.failing) == 0
	return c
}

// Set records the outcome of check: nil clears it. Followers hear of a change of readiness.
func (c *Checks) Set(check string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.failing, check)
	} else {
		c.failing[check] = err
	}
	if ready := len(c.failing) == 0; ready != c.ready {
		c.ready = ready
		for _, f := range c.followers {
			f(ready)
		}
	}
}

// Err is nil when ready, or a *NotReady saying which checks fail and why.
func (c *Checks) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failing) == 0 {
		return nil
	}
	e := &NotReady{Checks: slices.Sorted(maps.Keys(c.failing))}
	for _, name := range e.Checks {
		e.reasons = append(e.reasons, c.failing[name])
	}
	return e
}

// NotReady is Err's error. Checks may be shown to anyone (/readyz answers them); the reasons,
// which may name hosts and carry drivers' messages, are only in Error, for logs.
type NotReady struct {
	// Checks are the failing checks' names, sorted.
	Checks  []string
	reasons []error // of Checks
}

func (e *NotReady) Error() string {
	lines := make([]string, len(e.Checks))
	for i, name := range e.Checks {
		lines[i] = fmt.Sprintf("%s: %v", name, e.reasons[i])
	}
	return strings.Join(lines, "; ")
}

// Follow calls f with the readiness now, then on every change, in order (under the checks' lock:
// f must not call back into them).
func (c *Checks) Follow(f func(ready bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.followers = append(c.followers, f)
	f(c.ready)
}

// Watch runs probe now and then every interval until ctx ends, records its outcome as check, and
// logs each change of that outcome. Each probe gets at least two seconds.
func (c *Checks) Watch(ctx context.Context, log *slog.Logger, check string, interval time.Duration, probe func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := errNotChecked
	for {
		pctx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && last != nil:
			log.InfoContext(ctx, check+" reachable")
		case err != nil && (last == nil || last.Error() != err.Error()):
			log.WarnContext(ctx, check+" unreachable", "error", err.Error())
		}
		last = err
		c.Set(check, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
