package httpcontract_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every case of the shared table: invalid bodies get 400 naming the field, valid ones 202 with a
// producer-made UUIDv7, and (TestAcceptedVotesReachKafka) only the valid ones reach Kafka.
func TestSharedCases(t *testing.T) {
	c := setup(t)
	sc := loadCases(t)
	now := time.Now().UTC().Year()
	for _, tc := range sc.Cases {
		t.Run(tc.Description, func(t *testing.T) {
			if now != sc.ClockYear && strings.Contains(tc.Description, "year") && strings.Contains(tc.Description, "next") {
				t.Skip("depends on the clock year")
			}
			if tc.Ballot != nil && !*tc.Ballot {
				t.Skip("the format rules alone, with made-up names: the producers' unit tests run it; this producer has the ballot on")
			}
			r := c.send(t, http.MethodPost, "/votes", "application/json", caseBody(t, tc.Body, tc.BodyBase64))
			if !tc.Valid {
				if r.code != http.StatusBadRequest || r.Field != tc.Field {
					t.Fatalf("%d %s, want 400 naming %q", r.code, r.body, tc.Field)
				}
				return
			}
			if r.code != http.StatusAccepted || !isUUIDv7(r.ID) {
				t.Fatalf("%d %s, want 202 with a UUIDv7 id", r.code, r.body)
			}
		})
	}
}

func TestLimitsAndStatuses(t *testing.T) {
	c := setup(t)
	valid := `{"name":"Alux Nahual","album":"Alux Nahual","year":1981,"rank":1}`
	padded := func(n int) []byte { // valid JSON of exactly n bytes
		return []byte(valid[:len(valid)-1] + strings.Repeat(" ", n-len(valid)) + "}")
	}
	for _, tc := range []struct {
		name, method, path, contentType string
		body                            []byte
		code                            int
		allow                           string
	}{
		{"body of exactly 4 KiB", "POST", "/votes", "application/json", padded(4096), 202, ""},
		{"body one byte over 4 KiB", "POST", "/votes", "application/json", padded(4097), 413, ""},
		{"body of 1 MiB", "POST", "/votes", "application/json", padded(1 << 20), 413, ""},
		{"JSON with utf-8 charset", "POST", "/votes", "application/json; charset=utf-8", []byte(valid), 202, ""},
		{"text/plain", "POST", "/votes", "text/plain", []byte(valid), 415, ""},
		{"no Content-Type", "POST", "/votes", "", []byte(valid), 415, ""},
		{"form", "POST", "/votes", "application/x-www-form-urlencoded", []byte(valid), 415, ""},
		{"GET /votes", "GET", "/votes", "", nil, 405, "POST"},
		{"PUT /votes", "PUT", "/votes", "application/json", []byte(valid), 405, "POST"},
		{"DELETE /votes", "DELETE", "/votes", "", nil, 405, "POST"},
		{"POST /healthz", "POST", "/healthz", "application/json", []byte(`{}`), 405, "GET"},
		{"POST /readyz", "POST", "/readyz", "application/json", []byte(`{}`), 405, "GET"},
		{"unknown path", "GET", "/nope", "", nil, 404, ""},
		{"POST to unknown path", "POST", "/vote", "application/json", []byte(valid), 404, ""},
		{"root", "GET", "/", "", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.send(t, tc.method, tc.path, tc.contentType, tc.body)
			if r.code != tc.code {
				t.Fatalf("status %d (%s), want %d", r.code, r.body, tc.code)
			}
			if tc.allow != "" && !strings.Contains(r.header.Get("Allow"), tc.allow) {
				t.Errorf("Allow = %q, want it to list %s", r.header.Get("Allow"), tc.allow)
			}
			if tc.code == 202 && !isUUIDv7(r.ID) {
				t.Errorf("id %q is not a UUIDv7", r.ID)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	c := setup(t)
	valid := `{"name":"Alux Nahual","album":"Alux Nahual","year":1981,"rank":1}`
	key := runID() + "/key with spaces~"
	first := c.vote(t, valid, "Idempotency-Key", key)
	again := c.vote(t, valid, "Idempotency-Key", key)
	if first.code != http.StatusAccepted || first.ID != key || again.code != http.StatusAccepted || again.ID != key {
		t.Fatalf("same key twice: %d %s then %d %s, want 202 with the key as id", first.code, first.body, again.code, again.body)
	}
	if r := c.vote(t, valid, "Idempotency-Key", strings.Repeat("k", 128)); r.code != http.StatusAccepted {
		t.Fatalf("128-character key: %d %s", r.code, r.body)
	}
	for name, value := range map[string]string{
		"129 characters": strings.Repeat("k", 129),
		"empty":          "",
		"non-ASCII":      "clave-ñ",
		"tab":            "a\tb",
	} {
		t.Run(name, func(t *testing.T) {
			r := c.vote(t, valid, "Idempotency-Key", value)
			if r.code != http.StatusBadRequest || r.Field != "Idempotency-Key" {
				t.Fatalf("%d %s, want 400 naming Idempotency-Key", r.code, r.body)
			}
		})
	}
}

func TestHealthReadinessMetrics(t *testing.T) {
	c := setup(t)
	if r := c.send(t, "GET", "/healthz", "", nil); r.code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", r.code, r.body)
	}
	if r := c.send(t, "GET", "/readyz", "", nil); r.code != http.StatusOK {
		t.Fatalf("/readyz with Kafka up: %d %s", r.code, r.body)
	}
	c.vote(t, `{"name":"Alux Nahual","album":"Conquista","year":1982,"rank":1}`)
	r := c.send(t, "GET", "/metrics", "", nil)
	if r.code != http.StatusOK {
		t.Fatalf("/metrics: %d", r.code)
	}
	for _, name := range []string{"tally_http_requests_total", "tally_http_request_duration_seconds_bucket", "tally_kafka_errors_total"} {
		if !strings.Contains(string(r.body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(string(r.body), `code="202"`) {
		t.Errorf("/metrics does not count requests by status")
	}
}
