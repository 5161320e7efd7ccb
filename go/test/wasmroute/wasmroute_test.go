// Package wasmroute_test runs the Wasm producer (the AOT module on WasmEdge) with the real Kafka,
// consumer, Redis and MongoDB-wire server: votes it accepts are counted exactly once, and it
// rides out a Kafka restart by itself. The HTTP contract itself is //go/test/httpcontract's.
package wasmroute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tally-voting/tally/go/internal/counts"
	"github.com/tally-voting/tally/go/internal/stack"
	"github.com/tally-voting/tally/go/internal/stack/stacktest"
)

func TestWasmRoute(t *testing.T) {
	cfg := stacktest.Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := stacktest.Start(ctx, t, cfg, stack.WasmProducerName, stack.ConsumerName)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", cfg.Ports.Redis)})
	defer rdb.Close()

	t.Run("accepted votes are counted exactly once", func(t *testing.T) { countedOnce(ctx, t, cfg, rdb) })
	t.Run("Kafka restarted: 503 meanwhile, then served without a restart", func(t *testing.T) { kafkaRestart(ctx, t, cfg, s) })
	select {
	case err := <-s.Exited():
		t.Errorf("a process of the stack died: %v", err)
	default:
	}
}

// ballot is one album of proto/ballot.json, which the stack's producers check votes against.
type ballot struct {
	band, album string
	year        int
}

var ballots = []ballot{
	{"Bohemia Suburbana", "Sombras en el Jardín", 1993},
	{"Bohemia Suburbana", "Imaginaria Sonora", 2015},
	{"Alux Nahual", "Conquista", 1982},
	{"Alux Nahual", "Alto al Fuego", 1987},
}

func post(t *testing.T, url string, b ballot, key string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"album":%q,"year":"%d","rank":"5"}`, b.band, b.album, b.year)
	req, _ := http.NewRequest(http.MethodPost, url+"/votes", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /votes: %v (did the producer crash?)", err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out["id"]
}

// 240 votes in a known mix from 8 concurrent clients, 40 of them sent twice with the same
// Idempotency-Key: Redis ends with exactly the 240.
func countedOnce(ctx context.Context, t *testing.T, cfg stack.Config, rdb *redis.Client) {
	const n, clients = 240, 8
	want := map[ballot]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += clients {
				b := ballots[i%len(ballots)]
				key := ""
				if i%6 == 0 {
					key = "wasmroute-" + strconv.Itoa(i)
				}
				for try := range 1 + btoi(key != "") {
					if status, _ := post(t, cfg.WasmProducerURL(), b, key); status != http.StatusAccepted {
						t.Errorf("vote %d (send %d): status %d", i, try, status)
						return
					}
				}
				mu.Lock()
				want[b]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		total, _ := rdb.Get(ctx, counts.TotalKey).Int()
		if total >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A little longer, so a double count would have time to show.
	time.Sleep(2 * time.Second)
	if total, err := rdb.Get(ctx, counts.TotalKey).Int(); err != nil || total != n {
		t.Fatalf("%s = %d (%v), want %d", counts.TotalKey, total, err, n)
	}
	albums, err := rdb.HGetAll(ctx, counts.AlbumKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	for b, count := range want {
		if got := albums[counts.AlbumField(b.band, b.album)]; got != strconv.Itoa(count) {
			t.Errorf("%s / %s counted %s, want %d", b.band, b.album, got, count)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func kafkaRestart(ctx context.Context, t *testing.T, cfg stack.Config, s *stack.Stack) {
	url := cfg.WasmProducerURL()
	if err := s.StopOne(stack.KafkaName); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, url+"/votes",
			strings.NewReader(`{"name":"Alux Nahual","album":"Conquista","year":1982,"rank":1}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST during the outage: %v (did the producer crash?)", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("outage request %d: %d Retry-After=%q, want 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if err := s.StartOne(ctx, stack.KafkaName); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _ := post(t, url, ballots[0], "")
		if status == http.StatusAccepted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Kafka came back: still %d", status)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
