package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tally-voting/tally/go/internal/load"
	"github.com/tally-voting/tally/go/internal/stack"
)

// route is a producer under test: a name and the base URL of its HTTP API (docs/api.md).
type route struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// parseRoutes reads "name=url,name=url"; ${VAR} in a URL is read from the environment, and a
// route whose URL comes out empty (its producer is not in this stack) is left out, with a note.
func parseRoutes(spec string, getenv func(string) string) (routes []route, notes []string, err error) {
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, raw, ok := strings.Cut(item, "=")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("route %q: want name=URL", item)
		}
		u := strings.TrimSpace(expandEnv(raw, getenv))
		if u == "" {
			notes = append(notes, fmt.Sprintf("route %s skipped: its URL is empty (its producer is not in this stack)", name))
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Scheme != "http" || p.Host == "" {
			return nil, nil, fmt.Errorf("route %s: %q is not an http:// URL", name, u)
		}
		routes = append(routes, route{name, strings.TrimRight(u, "/")})
	}
	return routes, notes, nil
}

func expandEnv(s string, getenv func(string) string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '{' {
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				out = append(out, getenv(s[i+2:i+j])...)
				i += j
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

// producerReport is every target's runs.
type producerReport struct {
	Targets []*targetReport `json:"targets"`
}

// targetReport is one target's runs: a producer route, or a baseline.
type targetReport struct {
	Name string `json:"name"`
	// Kind is "route" (a producer) or "baseline".
	Kind string `json:"kind"`
	// Via says what a vote is: an HTTP POST /votes, or a gRPC CastVote.
	Via       string       `json:"via"`
	URL       string       `json:"url"`
	Runs      []runReport  `json:"runs"`
	Processes []procMemory `json:"processes"`
	Profiles  []cpuProfile `json:"profiles,omitempty"`
	// Best is the highest closed-loop throughput, SaturationVsEcho its ratio to the bare gRPC
	// echo's.
	Best             float64 `json:"best_votes_per_s"`
	SaturationVsEcho float64 `json:"saturation_vs_grpc_echo,omitempty"`
}

type runReport struct {
	load.Result
	CPU cpuUse `json:"cpu"`
}

type procMemory struct {
	proc
	memory
}

// target is something to cast votes at.
type target struct {
	report *targetReport
	make   func(conns int) (load.Target, error)
	// procs serve the target: their CPU is in each run's report, their memory in the target's.
	procs []proc
	// pprof are base URLs serving /debug/pprof/, by process name.
	pprof map[string]string
}

// runProducers starts the baselines (a bare gRPC echo server, and a grpc-front in front of it),
// then runs the same loads against each of them and each route.
func runProducers(ctx context.Context, cfg *config, out string, own *[]proc) (*producerReport, []string, error) {
	var notes []string
	self := []string{cfg.self, "grpc-echo"}
	addrCh := make(chan string, 1)
	echo, err := startChild("grpc-echo", self, nil, filepath.Join(out, "grpc-echo.log"), addrCh)
	if err != nil {
		return nil, nil, err
	}
	defer echo.stop()
	line := <-addrCh
	echoAddr, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		return nil, nil, fmt.Errorf("grpc-echo said %q, want its address (log: %s)", line, echo.tail())
	}
	*own = append(*own, echo.proc())

	frontPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	frontURL := "http://127.0.0.1:" + strconv.Itoa(frontPort)
	front, err := startChild("grpc-front (echo)", []string{cfg.frontBin}, []string{
		"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(frontPort), "PRODUCER_GRPC_TARGET=" + echoAddr,
	}, filepath.Join(out, "grpc-front-echo.log"), nil)
	if err != nil {
		return nil, nil, err
	}
	defer front.stop()
	if err := front.waitHTTP(ctx, frontURL+"/readyz", 30*time.Second); err != nil {
		return nil, nil, err
	}
	*own = append(*own, front.proc())

	targets := []*target{
		{
			report: &targetReport{Name: "grpc-echo", Kind: "baseline", Via: "gRPC CastVote, one connection, no HTTP, no Kafka", URL: echoAddr},
			make:   func(int) (load.Target, error) { return load.NewGRPC(echoAddr) },
			procs:  []proc{echo.proc()},
		},
		{
			report: &targetReport{Name: "front+echo", Kind: "baseline", Via: "HTTP POST /votes → grpc-front → gRPC echo, no Kafka", URL: frontURL},
			make:   func(conns int) (load.Target, error) { return load.NewHTTP(frontURL, conns), nil },
			procs:  []proc{front.proc(), echo.proc()},
			pprof:  map[string]string{},
		},
	}
	all := stackProcesses(*own)
	for _, r := range cfg.routes {
		// A route is loaded only if its producer is up: the stack sets every route's URL, but
		// runs only the processes the target names.
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := stack.HTTPOK(rctx, r.URL+"/readyz")
		cancel()
		if err != nil {
			notes = append(notes, fmt.Sprintf("route %s skipped: GET %s/readyz: %v (is its producer among the target's servers?)", r.Name, r.URL, err))
			log.Printf("producers: route %s skipped: %v", r.Name, err)
			continue
		}
		t := &target{
			report: &targetReport{Name: r.Name, Kind: "route", Via: "HTTP POST /votes", URL: r.URL},
			make:   func(conns int) (load.Target, error) { return load.NewHTTP(r.URL, conns), nil },
			pprof:  map[string]string{},
		}
		// The route's processes: the one listening on its port, and the stack's processes named
		// after the route (grpc-front and grpc-producer for route grpc).
		u, _ := url.Parse(r.URL)
		port, _ := strconv.Atoi(u.Port())
		if owner, ok := portOwner(all, port); ok {
			t.procs = append(t.procs, owner)
		} else {
			notes = append(notes, fmt.Sprintf("route %s: no process of this run listens on port %d; its CPU and memory are not reported", r.Name, port))
		}
		for _, p := range stackProcesses(nil) { // the stack's, not the baselines'
			if strings.HasPrefix(p.Name, r.Name+"-") && !containsPID(t.procs, p.PID) {
				t.procs = append(t.procs, p)
			}
		}
		for _, p := range t.procs {
			if base := findPprof(ctx, p.PID); base != "" {
				t.pprof[p.Name] = base
			}
		}
		targets = append(targets, t)
	}

	if !cfg.baselines {
		targets = targets[2:]
	}
	rep := &producerReport{}
	for _, t := range targets {
		log.Printf("producers: %s (%s)", t.report.Name, t.report.Via)
		if err := runTarget(ctx, cfg, t, all, out); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", t.report.Name, err)
		}
		rep.Targets = append(rep.Targets, t.report)
	}
	for _, t := range rep.Targets {
		if echoBest := targets[0].report.Best; echoBest > 0 && cfg.baselines {
			t.SaturationVsEcho = round2(t.Best / echoBest)
		}
	}
	// Memory last: VmHWM is the peak over the whole run.
	for _, t := range targets {
		for _, p := range t.procs {
			if m, err := readMemory(p.PID); err == nil {
				t.report.Processes = append(t.report.Processes, procMemory{p, m})
			}
		}
	}
	return rep, notes, nil
}

func containsPID(ps []proc, pid int) bool {
	for _, p := range ps {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// findPprof is the base URL of pid's /debug/pprof/, if one of its ports serves it.
func findPprof(ctx context.Context, pid int) string {
	for _, port := range listeningPorts(pid) {
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := stack.HTTPOK(ctx, base+"/debug/pprof/cmdline"); err == nil {
			cancel()
			return base
		}
		cancel()
	}
	return ""
}

// runTarget warms t up, then runs the open loops and the closed loops, profiling the processes
// during the closed loop with the most connections.
func runTarget(ctx context.Context, cfg *config, t *target, all []proc, out string) error {
	watch := all // every process of the run, the target's own among them
	if cfg.warmup > 0 {
		lt, err := t.make(32)
		if err != nil {
			return err
		}
		load.RunClosed(ctx, lt, load.Closed{Conns: 32, Duration: cfg.warmup})
		lt.Close()
	}
	record := func(r load.Result, cpu cpuUse) {
		t.report.Runs = append(t.report.Runs, runReport{r, cpu})
		log.Printf("  %-6s %-14s %8.0f votes/s  p50 %7.2f ms  p99 %8.2f ms  errors %v unsent %d",
			r.Mode, loadName(r), r.Throughput, r.Latency.P50, r.Latency.P99, r.Errors, r.Unsent)
	}
	for _, rate := range cfg.rates {
		lt, err := t.make(cfg.workers)
		if err != nil {
			return err
		}
		waitQuiet(watch, cfg.quietLimit, cfg.quietWait)
		m := startCPU(watch)
		r := load.RunOpen(ctx, lt, load.Open{Rate: rate, Duration: cfg.duration, Workers: cfg.workers})
		cpu := m.stop()
		lt.Close()
		record(r, cpu)
		pause(ctx)
	}
	for i, conns := range cfg.conns {
		lt, err := t.make(conns)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		profiled := i == len(cfg.conns)-1 && cfg.profileSeconds > 0 && (len(t.pprof) > 0 || t.report.Kind == "route")
		if profiled {
			// Profiles start a second in, when the connections are up, and end before the run does.
			secs := min(cfg.profileSeconds, int(cfg.duration.Seconds())-2)
			during := fmt.Sprintf("%s-closed-%d", t.report.Name, conns)
			add := func(p cpuProfile) { mu.Lock(); t.report.Profiles = append(t.report.Profiles, p); mu.Unlock() }
			for name, base := range t.pprof {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Second)
					add(profileURL(ctx, base, name, during, secs, out))
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Second)
				add(profileSelf(during, secs, out))
			}()
		}
		waitQuiet(watch, cfg.quietLimit, cfg.quietWait)
		m := startCPU(watch)
		r := load.RunClosed(ctx, lt, load.Closed{Conns: conns, Duration: cfg.duration})
		cpu := m.stop()
		lt.Close()
		wg.Wait()
		record(r, cpu)
		t.report.Best = max(t.report.Best, round1(r.Throughput))
		pause(ctx)
	}
	return nil
}

func loadName(r load.Result) string {
	if r.Mode == "open" {
		return fmt.Sprintf("%.0f/s offered", r.Offered)
	}
	return fmt.Sprintf("%d conns", r.Conns)
}

// pause lets queues empty between runs.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
