package counts

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/test/runfile"
)

// contract is proto/redis_keys.json.
type contract struct {
	Examples map[string]string `json:"examples"`
	Keys     []struct {
		Name     string   `json:"name"`
		Template string   `json:"template"`
		Type     string   `json:"type"`
		Field    string   `json:"field"`
		Writer   string   `json:"writer"`
		Readers  []string `json:"readers"`
		Expiry   *struct {
			Seconds int64  `json:"seconds"`
			From    string `json:"from"`
		} `json:"expiry"`
	} `json:"keys"`
	Users []struct {
		Name     string   `json:"name"`
		Commands []string `json:"commands"`
	} `json:"users"`
}

// placeholder is a {placeholder} of a key template in the contract.
var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// rulesOf is the ACL rules of the contract's user name: its keys (those naming it as writer or
// reader, each {placeholder} a wildcard), then its commands.
func (c contract) rulesOf(t *testing.T, name string) []any {
	t.Helper()
	var rules []any
	for _, k := range c.Keys {
		if k.Writer == name || slices.Contains(k.Readers, name) {
			rules = append(rules, "~"+placeholder.ReplaceAllString(k.Template, "*"))
		}
	}
	for _, u := range c.Users {
		if u.Name == name {
			for _, cmd := range u.Commands {
				rules = append(rules, cmd)
			}
			return rules
		}
	}
	t.Fatalf("proto/redis_keys.json has no user %s", name)
	return nil
}

func loadContract(t *testing.T) contract {
	t.Helper()
	data, err := os.ReadFile(runfile.Repo(t, "proto/redis_keys.json"))
	if err != nil {
		t.Fatalf("read the key contract: %v", err)
	}
	var c contract
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("parse the key contract: %v", err)
	}
	if len(c.Keys) == 0 {
		t.Fatal("the key contract lists no keys")
	}
	return c
}

// render fills a template's {placeholders} from params.
func render(t *testing.T, template string, params map[string]string) string {
	t.Helper()
	return placeholder.ReplaceAllStringFunc(template, func(p string) string {
		v, ok := params[p[1:len(p)-1]]
		if !ok {
			t.Fatalf("template %q: no example for %s", template, p)
		}
		return v
	})
}

// goKey is one key as the Go side builds it.
type goKey struct {
	key, field string
	ttl        time.Duration // 0: never expires
}

// goLayout builds every key of the contract with this package's builders from the same params.
func goLayout(t *testing.T, p map[string]string) map[string]goKey {
	t.Helper()
	bucket, err := strconv.ParseInt(p["bucket"], 10, 64)
	if err != nil {
		t.Fatalf("bucket example: %v", err)
	}
	partition, err := strconv.Atoi(p["partition"])
	if err != nil {
		t.Fatalf("partition example: %v", err)
	}
	return map[string]goKey{
		"total":          {key: TotalKey},
		"by_band":        {key: BandKey, field: p["band"]},
		"by_album":       {key: AlbumKey, field: AlbumField(p["band"], p["album"])},
		"band_albums":    {key: BandAlbumsKey(p["band"]), field: p["album"]},
		"bucket_10s":     {key: BucketKey(time.Unix(bucket, 0)), field: p["band"], ttl: BucketTTL},
		"applied_offset": {key: AppliedKey(partition)},
		"anchor":         {key: AnchorKey(partition)},
		"latency_10s":    {key: LatencyKey(time.Unix(bucket, 0)), field: LatencyField(200 * time.Millisecond), ttl: BucketTTL},
	}
}

func TestContractMatchesKeyBuilders(t *testing.T) {
	c := loadContract(t)
	layout := goLayout(t, c.Examples)
	var names []string
	for _, k := range c.Keys {
		names = append(names, k.Name)
		g, ok := layout[k.Name]
		if !ok {
			t.Errorf("contract key %q has no Go builder in this test's layout", k.Name)
			continue
		}
		if want := render(t, k.Template, c.Examples); g.key != want {
			t.Errorf("%s: Go builds key %q, contract says %q", k.Name, g.key, want)
		}
		if want := render(t, k.Field, c.Examples); g.field != want {
			t.Errorf("%s: Go writes field %q, contract says %q", k.Name, g.field, want)
		}
		var want time.Duration
		if k.Expiry != nil {
			want = time.Duration(k.Expiry.Seconds) * time.Second
		}
		if g.ttl != want {
			t.Errorf("%s: Go expires it after %v, contract says %v", k.Name, g.ttl, want)
		}
		if k.Type != "string" && k.Type != "hash" {
			t.Errorf("%s: unknown type %q", k.Name, k.Type)
		}
		if (k.Type == "hash") != (k.Field != "") {
			t.Errorf("%s: a %s must name its field exactly when it is a hash", k.Name, k.Type)
		}
		if k.Writer == "" || len(k.Readers) == 0 {
			t.Errorf("%s: writer and readers are required", k.Name)
		}
	}
	for name := range layout {
		if !slices.Contains(names, name) {
			t.Errorf("Go key %q is missing from proto/redis_keys.json", name)
		}
	}
}

func TestBucketStart(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z"},
		{"2026-11-23T10:00:09.999Z", "2026-11-23T10:00:00Z"},
		{"2026-11-23T10:00:10Z", "2026-11-23T10:00:10Z"},
		{"2026-11-23T10:59:59.5Z", "2026-11-23T10:59:50Z"},
		{"2026-11-23T04:00:05-06:00", "2026-11-23T10:00:00Z"}, // Guatemala's zone: same instant
	} {
		in, _ := time.Parse(time.RFC3339Nano, c.in)
		want, _ := time.Parse(time.RFC3339, c.want)
		if got := BucketStart(in); !got.Equal(want) {
			t.Errorf("BucketStart(%s) = %s, want %s", c.in, got, want)
		}
		if got, want := BucketKey(in), "tally:votes:10s:"+strconv.FormatInt(want.Unix(), 10); got != want {
			t.Errorf("BucketKey(%s) = %q, want %q", c.in, got, want)
		}
		if BucketStart(in).Unix()%10 != 0 {
			t.Errorf("bucket of %s does not start at a multiple of 10 s", c.in)
		}
	}
}

func TestLatencyField(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "5"}, {5 * time.Millisecond, "5"}, {5*time.Millisecond + 1, "10"}, {99 * time.Millisecond, "100"},
		{250 * time.Millisecond, "250"}, {3 * time.Second, "5000"}, {10 * time.Second, "10000"}, {time.Minute, "+Inf"},
		{-time.Second, "5"}, // an accept clock ahead of the consumer's
	} {
		if got := LatencyField(c.d); got != c.want {
			t.Errorf("LatencyField(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestAlbumFieldUsesEmDash(t *testing.T) {
	if got := AlbumField("Alux Nahual", "Hijos del Sol"); got != "Alux Nahual \u2014 Hijos del Sol" ||
		!strings.Contains(got, "—") {
		t.Fatalf("AlbumField = %q", got)
	}
}
