package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tally-voting/tally/go/internal/load"
)

// wasmModesReport compares the ways WasmEdge can run the Wasm producer: how long each takes to
// start and to become ready, how much memory it holds, and what it serves under the same load.
type wasmModesReport struct {
	ModuleBytes int64 `json:"module_bytes"`
	AOTBytes    int64 `json:"aot_module_bytes"`
	// Compile is `wasmedge compile` of the module, as //rust:wasm_producer_aot runs it: the
	// price AOT pays once, at build time.
	CompileS float64          `json:"compile_s"`
	Modes    []wasmModeReport `json:"modes"`
}

type wasmModeReport struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	// Error is why the mode could not be measured (the run goes on with the other modes).
	Error  string      `json:"error,omitempty"`
	Starts []wasmStart `json:"starts"`
	// Medians over Starts.
	ListeningMs float64 `json:"listening_ms"`
	ReadyMs     float64 `json:"ready_ms"`
	ReadyRSS    float64 `json:"ready_rss_mib"`
	ReadyAnon   float64 `json:"ready_rss_anon_mib"`
	ReadyFile   float64 `json:"ready_rss_file_mib"`
	// Load is a closed loop on the last start; PeakRSS is VmHWM after it.
	Load    runReport `json:"load"`
	PeakRSS float64   `json:"peak_rss_mib"`
}

// wasmStart is one start of the producer: from exec to its first 200 on /healthz (it listens)
// and on /readyz (it has Kafka's metadata), and its RSS then.
type wasmStart struct {
	ListeningMs float64 `json:"listening_ms"`
	ReadyMs     float64 `json:"ready_ms"`
	memory
}

type wasmMode struct {
	name   string
	flags  []string
	module string
}

// runWasmModes starts the producer cfg.wasmStarts times in each mode, then loads the last start.
func runWasmModes(ctx context.Context, cfg *config, out string, own *[]proc) (*wasmModesReport, error) {
	rep := &wasmModesReport{}
	for _, f := range []struct {
		path string
		size *int64
	}{{cfg.wasmModule, &rep.ModuleBytes}, {cfg.wasmAOT, &rep.AOTBytes}} {
		st, err := os.Stat(f.path)
		if err != nil {
			return nil, err
		}
		*f.size = st.Size()
	}
	compiled := filepath.Join(out, "wasm-compile.tmp.wasm")
	t0 := time.Now()
	if outb, err := exec.CommandContext(ctx, cfg.wasmedge, "compile", "--generic-binary", "--optimize", "3", cfg.wasmModule, compiled).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wasmedge compile: %w\n%s", err, outb)
	}
	rep.CompileS = round2(time.Since(t0).Seconds())
	os.Remove(compiled)

	modes := []wasmMode{
		// What Tally ships: the AOT module, told to run its native code.
		{"aot", []string{"--run-mode", "aot"}, cfg.wasmAOT},
		// The same plain module compiled by LLVM at every start.
		{"jit", []string{"--run-mode", "jit"}, cfg.wasmModule},
		// WasmEdge's default.
		{"interpreter", nil, cfg.wasmModule},
	}
	for _, m := range modes {
		log.Printf("wasm modes: %s, %d starts", m.name, cfg.wasmStarts)
		mr, err := runWasmMode(ctx, cfg, m, out, own)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			log.Printf("  %s: %v", m.name, err)
			mr.Error = err.Error()
		}
		rep.Modes = append(rep.Modes, *mr)
	}
	return rep, nil
}

func runWasmMode(ctx context.Context, cfg *config, m wasmMode, out string, own *[]proc) (*wasmModeReport, error) {
	mr := &wasmModeReport{Name: m.name, Command: "wasmedge " + strings.Join(m.flags, " ")}
	port, err := freePort()
	if err != nil {
		return mr, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := "http://" + addr
	args := append([]string{cfg.wasmedge}, m.flags...)
	args = append(args, "--env", "LISTEN_ADDR="+addr, "--env", "KAFKA_BROKERS="+strings.Join(cfg.kafka, ","), m.module)
	var last *child
	defer func() {
		if last != nil {
			last.stop()
		}
	}()
	for i := range cfg.wasmStarts {
		waitQuiet(stackProcesses(*own), cfg.quietLimit, cfg.quietWait)
		started := time.Now()
		c, err := startChild("wasm-"+m.name, args, nil, filepath.Join(out, fmt.Sprintf("wasm-%s-%d.log", m.name, i+1)), nil)
		if err != nil {
			return mr, err
		}
		listening, err := untilOK(ctx, c, base+"/healthz", started)
		if err == nil {
			var ready time.Duration
			if ready, err = untilOK(ctx, c, base+"/readyz", started); err == nil {
				mem, _ := readMemory(c.pid())
				mr.Starts = append(mr.Starts, wasmStart{ListeningMs: ms(listening), ReadyMs: ms(ready), memory: mem})
			}
		}
		if err != nil {
			c.stop()
			return mr, fmt.Errorf("start %d: %w (log: %s)", i+1, err, c.tail())
		}
		if i < cfg.wasmStarts-1 {
			c.stop()
			continue
		}
		last = c
	}
	mr.ListeningMs = median(mr.Starts, func(s wasmStart) float64 { return s.ListeningMs })
	mr.ReadyMs = median(mr.Starts, func(s wasmStart) float64 { return s.ReadyMs })
	mr.ReadyRSS = median(mr.Starts, func(s wasmStart) float64 { return s.RSS })
	mr.ReadyAnon = median(mr.Starts, func(s wasmStart) float64 { return s.Anon })
	mr.ReadyFile = median(mr.Starts, func(s wasmStart) float64 { return s.File })

	watch := append(stackProcesses(*own), last.proc())
	lt := load.NewHTTP(base, cfg.wasmConns)
	defer lt.Close()
	if cfg.warmup > 0 {
		load.RunClosed(ctx, lt, load.Closed{Conns: cfg.wasmConns, Duration: cfg.warmup})
	}
	waitQuiet(watch, cfg.quietLimit, cfg.quietWait)
	meter := startCPU(watch)
	r := load.RunClosed(ctx, lt, load.Closed{Conns: cfg.wasmConns, Duration: cfg.duration})
	mr.Load = runReport{r, meter.stop()}
	mem, err := readMemory(last.pid())
	if err != nil {
		return mr, err
	}
	mr.PeakRSS = mem.Peak
	log.Printf("  %-11s listening %6.0f ms  ready %6.0f ms  RSS %5.1f MiB  %d conns: %6.0f votes/s p99 %6.1f ms  peak RSS %5.1f MiB",
		m.name, mr.ListeningMs, mr.ReadyMs, mr.ReadyRSS, cfg.wasmConns, r.Throughput, r.Latency.P99, mr.PeakRSS)
	return mr, nil
}

// untilOK polls url every 2 ms (the figures are start-up times, so 100 ms polls would blur
// them) until it answers 200, and returns the time since started.
func untilOK(ctx context.Context, c *child, url string, started time.Time) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := started.Add(2 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(started), nil
			}
		}
		select {
		case <-c.done:
			return 0, fmt.Errorf("exited before GET %s answered 200: %v", url, c.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("GET %s: no 200 in 2 minutes", url)
		}
	}
}

func ms(d time.Duration) float64 { return round1(float64(d.Microseconds()) / 1000) }

func median[T any](xs []T, f func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	vs := make([]float64, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}
