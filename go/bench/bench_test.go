package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
