package consume

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/readiness"
)

// shortTopic is a votes topic whose partitions all end at offset 0: fewer records than any
// watermark, so every partition counted from is refused.
type shortTopic struct{}

func (shortTopic) Bounds(context.Context, int) (int64, int64, error) { return 0, 0, nil }
func (shortTopic) KeyAt(context.Context, int, int64) (string, error) {
	return "", errors.New("no records")
}

type fixedAnchors struct{ applied int64 }

func (a fixedAnchors) Applied(context.Context, int) (int64, error) { return a.applied, nil }
func (fixedAnchors) Anchor(context.Context, int) (int64, string, bool, error) {
	return 0, "", false, nil
}
func (fixedAnchors) SetAnchor(context.Context, int, int64, string) error { return nil }

// A refused partition fails its check while this replica holds it; once its generation ends
// (the group may give it to another replica, which then reports it) the check goes with it.
func TestRefusedPartitionsCheckEndsWithItsGeneration(t *testing.T) {
	health := readiness.New()
	c := &TopicCheck{Kafka: shortTopic{}, Anchors: fixedAnchors{applied: 41}, Health: health, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Guard(ctx, 2, 41)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for health.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the refused partition never failed its check")
		}
		time.Sleep(time.Millisecond)
	}
	var notReady *readiness.NotReady
	if err := health.Err(); !errors.As(err, &notReady) || !slices.Equal(notReady.Checks, []string{"votes partition 2"}) {
		t.Fatalf("health = %v, want votes partition 2 failing", err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Guard of a refused partition returned nil when its context ended")
	}
	if err := health.Err(); err != nil {
		t.Fatalf("health after the generation ended = %v, want ready", err)
	}
}
