// Package httpcontract_test checks a vote producer against the HTTP contract of docs/api.md,
// black-box: it knows only the producer's base URL (PRODUCER_URL), the Kafka it writes to
// (KAFKA_BROKERS) and the route header it must write (PRODUCER_ROUTE: grpc or wasm). The same
// suite runs against both producers (BUILD.bazel wires it to the gRPC route).
package httpcontract_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tally-voting/tally/go/test/runfile"
)

// contract is what the suite knows about the producer under test.
type contract struct {
	url     string
	brokers []string
	route   string
	client  *http.Client
}

func setup(t *testing.T) *contract {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			if os.Getenv("TEST_TARGET") != "" {
				t.Fatalf("%s is not set: the stack_test target must set it", name)
			}
			t.Skipf("%s is not set: run this suite through its stack_test target (go/test/httpcontract/BUILD.bazel)", name)
		}
		return v
	}
	return &contract{
		url:     strings.TrimSuffix(get("PRODUCER_URL"), "/"),
		brokers: strings.Split(get("KAFKA_BROKERS"), ","),
		route:   get("PRODUCER_ROUTE"),
		client:  &http.Client{Timeout: 15 * time.Second},
	}
}

type reply struct {
	code   int
	header http.Header
	body   []byte
	Error  string `json:"error"`
	Field  string `json:"field"`
	ID     string `json:"id"`
}

// send makes one request; headers are name, value pairs.
func (c *contract) send(t *testing.T, method, path, contentType string, body []byte, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := reply{code: resp.StatusCode, header: resp.Header}
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if path != "/metrics" && method != http.MethodHead {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
		}
		if err := json.Unmarshal(r.body, &r); err != nil {
			t.Errorf("%s %s: body %q is not a JSON object: %v", method, path, r.body, err)
		}
		if r.code >= 400 && r.Error == "" {
			t.Errorf("%s %s: %d without an \"error\" message: %s", method, path, r.code, r.body)
		}
	}
	return r
}

func (c *contract) vote(t *testing.T, body string, headers ...string) reply {
	t.Helper()
	return c.send(t, http.MethodPost, "/votes", "application/json", []byte(body), headers...)
}

// sharedCases is proto/vote_cases.json, from the test's runfiles.
type sharedCases struct {
	ClockYear int `json:"clock_year"`
	Cases     []struct {
		Description string `json:"description"`
		Body        string `json:"body"`
		BodyBase64  string `json:"body_base64"`
		Valid       bool   `json:"valid"`
		Ballot      *bool  `json:"ballot"`
		Field       string `json:"field"`
		Vote        struct {
			Name  string `json:"name"`
			Album string `json:"album"`
			Year  int32  `json:"year"`
			Rank  int32  `json:"rank"`
		} `json:"vote"`
	} `json:"cases"`
}

func loadCases(t *testing.T) sharedCases {
	t.Helper()
	path := runfile.Repo(t, "proto/vote_cases.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the vote cases: %v", err)
	}
	var sc sharedCases
	if err := json.Unmarshal(data, &sc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// The table is evaluated with the clock at clock_year; a real producer runs on today's clock,
	// so only year cases that hold in both can be checked here.
	if now := time.Now().UTC().Year(); now != sc.ClockYear {
		t.Logf("clock year %d differs from the table's %d: year cases near the upper bound are skipped", now, sc.ClockYear)
	}
	return sc
}

func caseBody(t *testing.T, body, b64 string) []byte {
	t.Helper()
	if b64 == "" {
		return []byte(body)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// isUUIDv7 is how the contract's producer-made ids look.
func isUUIDv7(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.Version() == 7 && u.String() == id
}

func runID() string { return fmt.Sprintf("contract-%d", time.Now().UnixNano()) }
