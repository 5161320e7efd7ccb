package httpapi

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/tally-voting/tally/go/internal/envconf"
)

// clientAddressTable is proto/client_address_cases.json, which the Wasm producer's tests run too.
type clientAddressTable struct {
	Settings []struct {
		Name    string  `json:"name"`
		Default float64 `json:"default"`
		Min     float64 `json:"min"`
		Max     float64 `json:"max"`
	} `json:"settings"`
	Cases []struct {
		Description     string   `json:"description"`
		ForwardedFor    []string `json:"forwarded_for"`
		ForwardedForHex []string `json:"forwarded_for_hex"`
		Peer            string   `json:"peer"`
		Hops            int      `json:"hops"`
		Client          *string  `json:"client"`
		ClientHex       *string  `json:"client_hex"`
	} `json:"cases"`
}

func readClientAddressTable(t *testing.T) clientAddressTable {
	t.Helper()
	// Relative to this package, under both go test and Bazel (the file is in the test's data).
	data, err := os.ReadFile("../../../proto/client_address_cases.json")
	if err != nil {
		t.Fatalf("read the shared table: %v", err)
	}
	var table clientAddressTable
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatalf("parse the shared table: %v", err)
	}
	if len(table.Cases) == 0 || len(table.Settings) == 0 {
		t.Fatal("the shared table has no cases or no settings")
	}
	return table
}

func unhex(t *testing.T, s string) string {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return string(b)
}

// Every case of the shared table, through a request as the server sees it: header lines as they
// came (no canonicalising of values), the peer with a port.
func TestClientAddrSharedCases(t *testing.T) {
	for _, c := range readClientAddressTable(t).Cases {
		r := httptest.NewRequest("POST", "/votes", nil)
		r.RemoteAddr = net.JoinHostPort(c.Peer, "5555")
		lines := c.ForwardedFor
		for _, h := range c.ForwardedForHex {
			lines = append(lines, unhex(t, h))
		}
		if len(lines) > 0 {
			r.Header["X-Forwarded-For"] = lines
		}
		var want string
		switch {
		case c.Client != nil:
			want = *c.Client
		case c.ClientHex != nil:
			want = unhex(t, *c.ClientHex)
		default:
			t.Fatalf("%s: no client in the case", c.Description)
		}
		if got := ClientAddr(r, c.Hops); got != want {
			t.Errorf("%s: got %q, want %q", c.Description, got, want)
		}
	}
}

// The rate limit's settings take the shared table's defaults, and exactly its ranges.
func TestReadRateLimitSharedSettings(t *testing.T) {
	read := func(name, value string) (RateLimit, error) {
		r := envconf.Reader{Get: func(n string) string {
			if n == name {
				return value
			}
			return ""
		}}
		rl := ReadRateLimit(&r)
		return rl, r.Err()
	}
	defaults, err := read("", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range readClientAddressTable(t).Settings {
		var got float64
		switch s.Name {
		case "RATE_LIMIT_PER_SECOND":
			got = defaults.PerSecond
		case "RATE_LIMIT_BURST":
			got = float64(defaults.Burst)
		case "TRUSTED_PROXY_HOPS":
			got = float64(defaults.TrustedHops)
		case "RATE_LIMIT_MAX_CLIENTS":
			got = float64(defaults.MaxClients)
		default:
			t.Errorf("%s: a setting ReadRateLimit does not read", s.Name)
			continue
		}
		if got != s.Default {
			t.Errorf("%s: default %v, want %v", s.Name, got, s.Default)
		}
		for v, ok := range map[float64]bool{s.Min: true, s.Max: true, s.Min - 1: false, s.Max + 1: false} {
			if _, err := read(s.Name, strconv.FormatFloat(v, 'f', -1, 64)); (err == nil) != ok {
				t.Errorf("%s=%v: error %v, want accepted %v", s.Name, v, err, ok)
			}
		}
	}
}
