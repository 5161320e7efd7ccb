package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-voting/tally/go/internal/load"
)

func TestParseRoutes(t *testing.T) {
	env := map[string]string{"GRPC_FRONT_URL": "http://127.0.0.1:8080/", "EMPTY": ""}
	routes, notes, err := parseRoutes("grpc=${GRPC_FRONT_URL}, wasm=${EMPTY},x=http://h:1", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []route{{"grpc", "http://127.0.0.1:8080"}, {"x", "http://h:1"}}
	if !slices.Equal(routes, want) || len(notes) != 1 || !strings.Contains(notes[0], "wasm") {
		t.Fatalf("routes %v, notes %v", routes, notes)
	}
	for _, bad := range []string{"grpc", "=http://h:1", "grpc=ftp://h:1", "grpc=h:1"} {
		if _, _, err := parseRoutes(bad, os.Getenv); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestConfigNeedsTheStack(t *testing.T) {
	if _, err := parseConfig([]string{"-grpc-front=x"}, func(string) string { return "" }); err == nil {
		t.Error("a config without KAFKA_BROKERS and -consumer was accepted for the consumer part")
	}
	cfg, err := parseConfig([]string{"-only=producers", "-grpc-front=x", "-rates=10,20", "-conns=4"},
		func(k string) string { return map[string]string{"GRPC_FRONT_URL": "http://127.0.0.1:1"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.rates, []float64{10, 20}) || !slices.Equal(cfg.conns, []int{4}) || len(cfg.routes) != 1 || cfg.routes[0].Name != "grpc" {
		t.Errorf("config %+v", cfg)
	}
	if _, err := parseConfig([]string{"-only=wasm-modes", "-wasm-module=m.wasm"}, func(string) string { return "" }); err == nil {
		t.Error("the wasm-modes part was accepted without -wasm-aot and KAFKA_BROKERS")
	}
	cfg, err = parseConfig([]string{"-only=wasm-modes", "-wasm-module=m.wasm", "-wasm-aot=aot.wasm"},
		func(k string) string { return map[string]string{"KAFKA_BROKERS": "127.0.0.1:1"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.runs("wasm-modes") || cfg.runs("producers") || cfg.runs("consumer") || !filepath.IsAbs(cfg.wasmAOT) {
		t.Errorf("-only=wasm-modes gave %+v", cfg)
	}
}

// The /proc readers find this process's memory, CPU time and listening port.
func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	m, err := readMemory(pid)
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("memory %+v, %v", m, err)
	}
	st, err := readStat(pid)
	if err != nil || st.ppid != os.Getppid() {
		t.Fatalf("stat %+v, %v", st, err)
	}
	busy, total, err := machineTicks()
	if err != nil || busy == 0 || total < busy {
		t.Fatalf("machine ticks %d/%d, %v", busy, total, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if ports := listeningPorts(pid); !slices.Contains(ports, port) {
		t.Errorf("listening ports %v lack %d", ports, port)
	}
	if p, ok := portOwner([]proc{{pid, "me"}}, port); !ok || p.PID != pid {
		t.Errorf("port owner %v %v", p, ok)
	}
	m2 := startCPU([]proc{{pid, "me"}})
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	if u := m2.use(); u.Seconds <= 0 || u.Machine <= 0 || u.Ours["me"] <= 0 {
		t.Errorf("cpu use after 100 ms of spinning: %+v", u)
	}
}

// A vote is visible at the first sample whose watermark reached its offset; none after the last.
func TestFirstAtOrPast(t *testing.T) {
	t0 := time.Unix(100, 0)
	samples := []watermarkSample{{t0, 4}, {t0.Add(time.Second), 9}, {t0.Add(2 * time.Second), 20}}
	for _, c := range []struct {
		offset int64
		want   time.Time
		ok     bool
	}{{0, t0, true}, {4, t0, true}, {5, t0.Add(time.Second), true}, {20, t0.Add(2 * time.Second), true}, {21, time.Time{}, false}} {
		if got, ok := firstAtOrPast(samples, c.offset); ok != c.ok || !got.Equal(c.want) {
			t.Errorf("offset %d: %v %v, want %v %v", c.offset, got, ok, c.want, c.ok)
		}
	}
}

// Stage quantiles come from the difference of two scrapes, interpolated within buckets.
func TestStageDeltas(t *testing.T) {
	b := func(stage, le string) string {
		return `tally_consumer_stage_seconds_bucket{stage="` + stage + `",le="` + le + `"}`
	}
	before := map[string]any{b("queue", "0.01"): int64(5), b("queue", "0.1"): int64(5), b("queue", "+Inf"): int64(5),
		`tally_consumer_stage_seconds_sum{stage="queue"}`: 0.01}
	after := map[string]any{b("queue", "0.01"): int64(55), b("queue", "0.1"): int64(105), b("queue", "+Inf"): int64(105),
		`tally_consumer_stage_seconds_sum{stage="queue"}`: 2.51}
	got := stageDeltas(before, after)
	var q stageTime
	for _, s := range got {
		if s.Stage == "queue" {
			q = s
		}
	}
	// 100 new values: 50 up to 10 ms, 50 from 10 to 100 ms; p50 at 10 ms, p99 at 98.2 ms.
	if q.Count != 100 || q.Mean != 25 || q.P50 != 10 || q.P99 != 98.2 {
		t.Errorf("queue %+v", q)
	}
	if len(got) != 5 {
		t.Errorf("%d stages, want all 5: %+v", len(got), got)
	}
}

// Latencies per route from the logs and the watermark samples, and the worst second of accept.
func TestRouteLatencies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	samples := map[int][]watermarkSample{0: {{t0.Add(20 * time.Millisecond), 1}, {t0.Add(1500 * time.Millisecond), 2}}}
	logs := []stepLog{
		{Route: "grpc", AcceptedAt: t0, CountedAt: t0.Add(10 * time.Millisecond), Partition: 0, Offset: 1},
		{Route: "grpc", AcceptedAt: t0.Add(100 * time.Millisecond), CountedAt: t0.Add(1400 * time.Millisecond), Partition: 0, Offset: 2},
		{Route: "wasm", AcceptedAt: t0, CountedAt: t0, Partition: 0, Offset: 0},
	}
	r := routeLatencies("grpc", load.Result{OK: 2}, logs, samples, t0.Add(time.Minute))
	if r.Logs != 2 || r.Visible.Count != 2 || r.Visible.Max != 1400 || r.Visible.Min != 20 || r.SecondsOver1s != 1 ||
		r.WorstMaxMs != 1400 || r.WorstMinMs != 20 || r.Logged.Max != 1300 || r.Missing != 0 {
		t.Errorf("grpc %+v", r)
	}
	// A vote never seen counted is charged until the benchmark gave up; one without a log is missing.
	logs = append(logs, stepLog{Route: "grpc", AcceptedAt: t0, CountedAt: t0, Partition: 0, Offset: 3})
	r = routeLatencies("grpc", load.Result{OK: 4}, logs, samples, t0.Add(time.Minute))
	if r.Logs != 3 || r.Censored != 1 || r.Missing != 2 || r.Visible.Max != 60000 {
		t.Errorf("grpc with a vote not counted in time: %+v", r)
	}
}
