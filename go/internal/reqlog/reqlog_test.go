package reqlog

import (
	"context"
	"log/slog"
	"testing"
)

func TestBag(t *testing.T) {
	Add(context.Background(), slog.String("lost", "no bag")) // must not panic
	if got := Attrs(context.Background()); got != nil {
		t.Fatalf("Attrs without a bag = %v", got)
	}
	ctx := Open(context.Background())
	Add(ctx, slog.String("vote_id", "a"))
	Add(ctx, slog.Int("n", 2))
	got := Attrs(ctx)
	if len(got) != 2 || got[0].Key != "vote_id" || got[1].Value.Int64() != 2 {
		t.Fatalf("Attrs = %v", got)
	}
}
