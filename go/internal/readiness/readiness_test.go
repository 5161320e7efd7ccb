package readiness

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadyOnlyWhenEveryCheckPassed(t *testing.T) {
	c := New("redis", "mongo")
	var heard []bool
	c.Follow(func(ready bool) { heard = append(heard, ready) })
	if err := c.Err(); err == nil || err.Error() != "mongo: not checked yet; redis: not checked yet" {
		t.Fatalf("fresh checks: %v, want both not checked yet", err)
	}
	c.Set("redis", nil)
	if c.Err() == nil {
		t.Fatal("ready with mongo not checked")
	}
	c.Set("mongo", nil)
	if err := c.Err(); err != nil {
		t.Fatalf("Err = %v, want ready", err)
	}
	c.Set("writes", errors.New("connection refused"))
	c.Set("writes", errors.New("timeout")) // no change of readiness: not heard
	if err := c.Err(); err == nil || err.Error() != "writes: timeout" {
		t.Fatalf("Err = %v, want the last failure", err)
	}
	c.Set("writes", nil)
	if want := []bool{false, true, false, true}; !slices.Equal(heard, want) {
		t.Fatalf("followers heard %v, want %v", heard, want)
	}
	New().Follow(func(ready bool) {
		if !ready {
			t.Error("checks with no check are not ready")
		}
	})
}

// Watch records each probe's outcome and logs a change once, not every probe.
func TestWatchFollowsTheProbeAndLogsChanges(t *testing.T) {
	c := New("kafka")
	var logs bytes.Buffer // read only once Watch has returned
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var mu sync.Mutex
	probeErr := error(nil)
	probes := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Watch(ctx, log, "kafka", time.Millisecond, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			probes++
			return probeErr
		})
		close(done)
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never %s", what)
			}
		}
	}
	waitFor("ready", func() bool { return c.Err() == nil })
	mu.Lock()
	probeErr = errors.New("connection refused")
	from := probes
	mu.Unlock()
	waitFor("failing", func() bool { return c.Err() != nil })
	waitFor("probed again", func() bool { mu.Lock(); defer mu.Unlock(); return probes > from+3 })
	cancel()
	<-done
	if err := c.Err(); err == nil || err.Error() != "kafka: connection refused" {
		t.Fatalf("Err = %v", err)
	}
	out := logs.String()
	if strings.Count(out, "kafka reachable") != 1 || strings.Count(out, "kafka unreachable") != 1 ||
		!strings.Contains(out, "connection refused") {
		t.Fatalf("want one line per change, got:\n%s", out)
	}
}
