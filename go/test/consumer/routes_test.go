package consumer_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/votelog"
)

// The same Idempotency-Key sent to both routes and again to the first (a client's retry), through
// the real producers, to two consumers: each key is one vote, counted once, logged once with the
// route that was first; votes without a key count once each.
func TestSameKeyThroughBothRoutesCountsOnce(t *testing.T) {
	e := start(t, stack.KafkaName, stack.RedisName, stack.MongoName, stack.GRPCFrontName, stack.WasmProducerName)
	e.startConsumer(stack.ConsumerName)
	e.startConsumer("consumer-2")
	routes := map[string]string{"grpc": e.cfg.GRPCFrontURL(), "wasm": e.cfg.WasmProducerURL()}
	post := func(route string, body []byte, key string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, routes[route]+"/votes", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", route, err)
		}
		defer resp.Body.Close()
		var answer struct {
			ID string `json:"id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d (%v), want 202", route, resp.StatusCode, err)
		}
		return answer.ID
	}
	wantBand := map[string]int{}
	firstRoute := map[string]string{}
	const keyed, unkeyed = 150, 50
	for i := range keyed {
		v := load.Pick(uint64(i))
		key := fmt.Sprintf("same-key-%03d", i)
		first, second := "grpc", "wasm"
		if i%2 == 1 {
			first, second = second, first
		}
		for _, route := range []string{first, second, first} {
			if id := post(route, v.Body, key); id != key {
				t.Fatalf("the vote's id is %q, want the key %q", id, key)
			}
		}
		firstRoute[key] = first
		wantBand[v.Band]++
	}
	for i := range unkeyed {
		v := load.Pick(uint64(i))
		post([]string{"grpc", "wasm"}[i%2], v.Body, "")
		wantBand[v.Band]++
	}
	want := keyed + unkeyed
	// Every record is committed, so applied: the counts are final, and a vote counted twice
	// would show.
	e.waitCommitted()
	if got := e.total(); got != want {
		t.Fatalf("%s = %d, want %d (%d keyed votes sent 3 times each, %d without a key)", counts.TotalKey, got, want, keyed, unkeyed)
	}
	wantS := map[string]int{}
	for b, n := range wantBand {
		wantS[b] = n
	}
	e.checkHash(counts.BandKey, wantS)
	logs := e.mongo.Database(votelog.Database).Collection(votelog.LogsCollection)
	n, err := logs.CountDocuments(e.ctx, bson.D{})
	if err != nil || n != int64(want) {
		t.Fatalf("MongoDB holds %d logs (%v), want %d", n, err, want)
	}
	for key, route := range firstRoute {
		var l votelog.Log
		if err := logs.FindOne(e.ctx, bson.D{{Key: "_id", Value: key}}).Decode(&l); err != nil {
			t.Fatalf("log of %s: %v", key, err)
		}
		if l.Route != route {
			t.Errorf("log of %s has route %s, want %s (the first one sent)", key, l.Route, route)
		}
	}
}
