// Package grafana_test checks Grafana as code against the contracts it depends on: the
// provisioned data source and the Redis key layout the consumer writes (proto/redis_keys.json),
// both ways: the dashboards read only keys the layout lets Grafana read, and every such key.
package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tally-voting/tally/go/test/runfile"
)

// keyLayout is proto/redis_keys.json, as far as this test reads it.
type keyLayout struct {
	Keys []struct {
		Name     string   `json:"name"`
		Template string   `json:"template"`
		Type     string   `json:"type"`
		Readers  []string `json:"readers"`
	} `json:"keys"`
}

type target struct {
	RefID      string `json:"refId"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Type      string `json:"type"`
	Command   string `json:"command"`
	KeyName   string `json:"keyName"`
	Query     string `json:"query"`
	Streaming bool   `json:"streaming"`
}

type panel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []target `json:"targets"`
}

// readCommands maps the read commands a dashboard may use, as the data source's commands or
// inside a read-only script, to the type of key they read ("" for none).
var readCommands = map[string]string{
	"get": "string", "hgetall": "hash", "hget": "hash", "hkeys": "hash", "hlen": "hash", "hvals": "hash",
	"time": "",
}

// keyMatcher is one key template of the layout as a pattern: {placeholders} match one segment.
type keyMatcher struct {
	name, typ string
	grafana   bool
	re        *regexp.Regexp
}

func loadLayout(t *testing.T) []keyMatcher {
	t.Helper()
	var layout keyLayout
	readJSON(t, "REDIS_KEYS", &layout)
	var out []keyMatcher
	placeholder := regexp.MustCompile(`\\\{[a-z_]+\\\}`)
	for _, k := range layout.Keys {
		pattern := placeholder.ReplaceAllString(regexp.QuoteMeta(k.Template), `[^:]+`)
		grafana := false
		for _, r := range k.Readers {
			grafana = grafana || r == "grafana"
		}
		out = append(out, keyMatcher{k.Name, k.Type, grafana, regexp.MustCompile("^" + pattern + "$")})
	}
	if len(out) == 0 {
		t.Fatal("proto/redis_keys.json lists no keys")
	}
	return out
}

// read records the layout's keys the dashboards read, by name.
type read map[string]bool

// match returns nil when command reads key as the layout allows Grafana to, or says why not.
func (r read) match(layout []keyMatcher, key, command string) error {
	typ, ok := readCommands[strings.ToLower(command)]
	if !ok || typ == "" {
		return fmt.Errorf("command %q is not one of the read commands %v", command, readCommands)
	}
	for _, k := range layout {
		if !k.re.MatchString(key) {
			continue
		}
		if !k.grafana {
			return fmt.Errorf("key %q (%s) does not list grafana among its readers in proto/redis_keys.json", key, k.name)
		}
		if k.typ != typ {
			return fmt.Errorf("key %q is a %s, but %s reads a %s", key, k.typ, command, typ)
		}
		r[k.name] = true
		return nil
	}
	return fmt.Errorf("key %q is not one the consumer writes (proto/redis_keys.json)", key)
}

var (
	scriptQuery = regexp.MustCompile(`^EVAL_RO "([^"]*)" 0$`)
	redisCall   = regexp.MustCompile(`redis\.call\('(\w+)'(?:,\s*'([^']*)'(\s*\.\.)?)?`)
)

// checkQuery checks one panel query: a data-source command on a key, or a CLI query that is a
// read-only script (EVAL_RO, so Redis refuses writes) whose every call reads a key Grafana may
// read. A key built by concatenation ('tally:votes:10s:' .. bucket) must be a template's prefix.
func (r read) checkQuery(layout []keyMatcher, q target) error {
	switch q.Type {
	case "command":
		if q.Query != "" {
			return fmt.Errorf("a command query with a raw query %q", q.Query)
		}
		return r.match(layout, q.KeyName, q.Command)
	case "cli":
		m := scriptQuery.FindStringSubmatch(q.Query)
		if m == nil {
			return fmt.Errorf("CLI query %q is not a read-only script (EVAL_RO \"...\" 0)", q.Query)
		}
		calls := redisCall.FindAllStringSubmatch(m[1], -1)
		if len(calls) == 0 {
			return fmt.Errorf("script %q reads nothing", m[1])
		}
		for _, c := range calls {
			command, key, concatenated := c[1], c[2], c[3] != ""
			if key == "" {
				if typ, ok := readCommands[strings.ToLower(command)]; !ok || typ != "" {
					return fmt.Errorf("script calls %s without a literal key", command)
				}
				continue
			}
			if concatenated {
				key += "0" // stands for the computed rest: one placeholder segment
			}
			if err := r.match(layout, key, command); err != nil {
				return fmt.Errorf("script: %w", err)
			}
		}
		return nil
	default:
		return fmt.Errorf("query type %q, want command or cli", q.Type)
	}
}

func readJSON(t *testing.T, env string, v any) {
	t.Helper()
	data, err := os.ReadFile(runfile.Path(t, env))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", os.Getenv(env), err)
	}
}

// provisionedUID reads the uid of the Redis data source from the provisioning file.
func provisionedUID(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(runfile.Path(t, "DATASOURCE"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+uid:\s*(\S+)\s*$`).FindAllStringSubmatch(string(data), -1)
	if len(m) != 1 || !strings.Contains(string(data), "type: redis-datasource") {
		t.Fatalf("want one redis-datasource with a uid in %s, found uids %v", os.Getenv("DATASOURCE"), m)
	}
	return m[0][1]
}

func TestDashboardsReadExactlyGrafanasKeys(t *testing.T) {
	layout := loadLayout(t)
	uid := provisionedUID(t)
	reads := read{}
	files := strings.Fields(os.Getenv("DASHBOARDS"))
	if len(files) == 0 {
		t.Fatal("no dashboards ($DASHBOARDS)")
	}
	for _, f := range files {
		var dash struct {
			UID    string  `json:"uid"`
			Panels []panel `json:"panels"`
		}
		data, err := os.ReadFile(filepath.Join(os.Getenv("TEST_SRCDIR"), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Fatalf("%s does not parse: %v", f, err)
		}
		if dash.UID == "" {
			t.Errorf("%s: no uid, so provisioning would make a new dashboard on every change", f)
		}
		live := 0
		for _, p := range dash.Panels {
			where := fmt.Sprintf("%s panel %d %q", filepath.Base(f), p.ID, p.Title)
			if p.Datasource == nil || p.Datasource.UID != uid {
				t.Errorf("%s: data source %+v, want the provisioned uid %q", where, p.Datasource, uid)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", where)
			}
			streams := false
			for _, q := range p.Targets {
				if q.Datasource == nil || q.Datasource.UID != uid || q.Datasource.Type != "redis-datasource" {
					t.Errorf("%s query %s: data source %+v, want redis-datasource %q", where, q.RefID, q.Datasource, uid)
				}
				if err := reads.checkQuery(layout, q); err != nil {
					t.Errorf("%s query %s: %v", where, q.RefID, err)
				}
				streams = streams || q.Streaming
			}
			if streams {
				live++
			}
		}
		if live < 2 {
			t.Errorf("%s: %d live (streaming) panels, want at least 2", f, live)
		}
	}
	// The other way round: a key the layout says Grafana reads is read by some panel.
	for _, k := range layout {
		if k.grafana && !reads[k.name] {
			t.Errorf("proto/redis_keys.json lists grafana among the readers of %s, but no dashboard reads it", k.name)
		}
	}
}

// TestCheckQueryRejects proves the check can fail: what a drifted dashboard would hold.
func TestCheckQueryRejects(t *testing.T) {
	layout := loadLayout(t)
	command := func(key, cmd string) target { return target{Type: "command", Command: cmd, KeyName: key} }
	script := func(body string) target { return target{Type: "cli", Query: `EVAL_RO "` + body + `" 0`} }
	for _, tc := range []struct {
		name string
		q    target
		want string
	}{
		{"unknown key", command("tally:votes:bands", "hgetall"), "not one the consumer writes"},
		{"extra segment", command("tally:votes:band:Alux Nahual:x", "hgetall"), "not one the consumer writes"},
		{"key Grafana may not read", command("tally:applied:votes:3", "get"), "readers"},
		{"wrong type", command("tally:votes:total", "hgetall"), "is a string"},
		{"write command", command("tally:votes:band", "del"), "read commands"},
		{"raw query in a command", target{Type: "command", Command: "get", KeyName: "tally:votes:total", Query: "GET x"}, "raw query"},
		{"CLI that is not a read-only script", target{Type: "cli", Query: "HGETALL tally:votes:band"}, "read-only script"},
		{"script writing", script("return redis.call('HINCRBY', 'tally:votes:band', 'x', 1)"), "read commands"},
		{"script reading an unknown prefix", script("return redis.call('HVALS', 'tally:votes:1m:' .. 5)"), "not one the consumer writes"},
		{"script calling nothing", script("return 1"), "reads nothing"},
	} {
		if err := (read{}).checkQuery(layout, tc.q); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: checkQuery = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	for _, ok := range []target{
		command("tally:votes:10s:1795460000", "hgetall"),
		script("return redis.call('HVALS', 'tally:votes:10s:' .. (redis.call('TIME')[1] - 10))"),
	} {
		if err := (read{}).checkQuery(layout, ok); err != nil {
			t.Errorf("%+v was rejected: %v", ok, err)
		}
	}
}
