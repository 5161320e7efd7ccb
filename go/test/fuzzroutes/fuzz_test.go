package fuzzroutes

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tally-voting/tally/go/test/testenv"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The seed and count of `bazel test`: a bounded run. docs/api.md says how to run more
// (FUZZ_REQUESTS, FUZZ_SEED) and what the last large run found.
const (
	defaultSeed     = 13
	defaultRequests = 3000
	workers         = 8
)

// Outcome is what a route answered to one request: status and error field. Status 0 means no
// answer (the connection ended first).
type Outcome struct {
	Status int
	Field  string
}

func (o Outcome) String() string {
	if o.Status == 0 {
		return "no answer"
	}
	if o.Field == "" {
		return strconv.Itoa(o.Status)
	}
	return fmt.Sprintf("%d field %q", o.Status, o.Field)
}

// Every generated request goes to both routes (the gRPC route's front and the Wasm producer, both
// with the ballot): status and error field must be the same for each.
func TestRoutesAnswerAlike(t *testing.T) {
	grpcAddr, wasmAddr := hostOf(t, "GRPC_FRONT_URL"), hostOf(t, "WASM_PRODUCER_URL")
	seed := uint64(testenv.Int(t, "FUZZ_SEED", defaultSeed))
	want := testenv.Int(t, "FUZZ_REQUESTS", defaultRequests)

	type disagreement struct {
		index      int
		grpc, wasm []Outcome
		c          Case
	}
	var (
		mu        sync.Mutex
		disagreed []disagreement
		statuses  = map[string]int{}
		requests  int
	)
	next := make(chan int)
	var wg sync.WaitGroup
	started := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				c := Generate(seed, i)
				g, w := Exchange(grpcAddr, c), Exchange(wasmAddr, c)
				mu.Lock()
				requests += len(c.Requests)
				for _, o := range g {
					statuses[o.String()]++
				}
				if !equal(g, w) {
					disagreed = append(disagreed, disagreement{i, g, w, c})
				}
				mu.Unlock()
			}
		})
	}
	for i := 0; ; i++ {
		mu.Lock()
		done := requests >= want
		mu.Unlock()
		if done {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()

	var kinds []string
	for k, n := range statuses {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("seed %d: %d requests in %v, %d disagreements; gRPC route's answers: %v",
		seed, requests, time.Since(started).Round(time.Second), len(disagreed), kinds)
	sort.Slice(disagreed, func(a, b int) bool { return disagreed[a].index < disagreed[b].index })
	for i, d := range disagreed {
		if i == 25 {
			t.Errorf("... and %d more", len(disagreed)-i)
			break
		}
		t.Errorf("case %d (%s): gRPC route %v, Wasm route %v\n%q", d.index, d.c.Delivery, d.grpc, d.wasm, d.c.Bytes())
	}
}

func equal(a, b []Outcome) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Exchange sends c on a new connection to addr and reads an answer per request. The client
// half-closes once everything is sent, so a server never waits for bytes that will not come.
func Exchange(addr string, c Case) []Outcome {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return []Outcome{{Status: -1, Field: err.Error()}}
	}
	defer conn.Close()
	tcp := conn.(*net.TCPConn)
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	var out []Outcome

	switch c.Delivery {
	case ExpectContinue:
		req := c.Requests[0]
		if _, err := conn.Write(req.Head); err != nil {
			return append(out, Outcome{})
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, &http.Request{Method: req.Method})
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		var ne net.Error
		switch {
		case err == nil && resp.StatusCode != http.StatusContinue:
			return append(out, outcome(resp))
		case err == nil || (errors.As(err, &ne) && ne.Timeout()):
			// 100 Continue, or no word within a second (which RFC 9110 allows): send the body.
		default:
			return append(out, Outcome{})
		}
		_, _ = conn.Write(req.Body)
		_ = tcp.CloseWrite()
		resp, err = http.ReadResponse(br, &http.Request{Method: req.Method})
		if err != nil {
			return append(out, Outcome{})
		}
		return append(out, outcome(resp))
	case SmallWrites:
		data := c.Bytes()
		for i := 0; i < len(data); {
			n := min(len(data)-i, 1+i%7)
			if _, err := conn.Write(data[i : i+n]); err != nil {
				break
			}
			i += n
		}
	default:
		_, _ = conn.Write(c.Bytes())
	}
	_ = tcp.CloseWrite()
	for i, req := range c.Requests {
		resp, err := http.ReadResponse(br, &http.Request{Method: req.Method})
		if err != nil {
			if i > 0 {
				break // the connection ended after an answer, with or without Connection: close
			}
			return append(out, Outcome{})
		}
		out = append(out, outcome(resp))
		if resp.Close {
			break
		}
	}
	return out
}

// outcome reads the response's status and its JSON error's field (none if not JSON).
func outcome(resp *http.Response) Outcome {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Field string `json:"field"`
	}
	_ = json.Unmarshal(body, &e)
	return Outcome{Status: resp.StatusCode, Field: e.Field}
}

func hostOf(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("%s is not set: run this test through its stack_test target (go/test/fuzzroutes/BUILD.bazel)", name)
	}
	u, err := url.Parse(v)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
