package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// report is results.json.
type report struct {
	Started   string           `json:"started"`
	Seconds   float64          `json:"seconds"`
	Machine   machine          `json:"machine"`
	Settings  map[string]any   `json:"settings"`
	Producers *producerReport  `json:"producers,omitempty"`
	Consumer  *consumerReport  `json:"consumer,omitempty"`
	Pipeline  *pipelineReport  `json:"pipeline,omitempty"`
	WasmModes *wasmModesReport `json:"wasm_modes,omitempty"`
	Failover  *failoverReport  `json:"failover,omitempty"`
	Processes []procMemory     `json:"processes_at_end"`
	// IdleBefore is the machine's load before the benchmark started anything; OutsideDuringRuns
	// the mean load of other processes over the measured runs, in cores.
	IdleBefore        cpuUse   `json:"idle_before"`
	OutsideDuringRuns float64  `json:"outside_during_runs_cores"`
	Notes             []string `json:"notes,omitempty"`
}

type machine struct {
	CPU          string  `json:"cpu"`
	Cores        int     `json:"cores"`
	MemGiB       float64 `json:"mem_gib"`
	OS           string  `json:"os"`
	Kernel       string  `json:"kernel"`
	Go           string  `json:"go"`
	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end"`
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(data), "\n", 2)[0], "MemTotal:"), "%f", &kib)
		m.MemGiB = round1(kib / (1 << 20))
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func loadAvg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func settingsOf(cfg *config) map[string]any {
	return map[string]any{
		"routes": cfg.routes, "open_rates_per_s": cfg.rates, "closed_conns": cfg.conns,
		"run_seconds": cfg.duration.Seconds(), "warmup_seconds": cfg.warmup.Seconds(), "open_loop_max_conns": cfg.workers,
		"backlog": cfg.backlog, "consumer_env": cfg.consumerEnv, "profile_seconds": cfg.profileSeconds,
		"service_log_level": os.Getenv("LOG_LEVEL"), "lua_votes": cfg.luaVotes, "mongo_docs": cfg.mongoDocs,
		"redis_requests": cfg.redisRequests, "only": cfg.only,
		"pipeline_rates_per_s": cfg.pipelineRates, "pipeline_consumers": cfg.pipelineConsumers,
		"pipeline_seconds": cfg.pipelineDuration.Seconds(), "pipeline_warmup_seconds": cfg.pipelineWarmup.Seconds(), "pipeline_profile_rate": cfg.pipelineProfileRate,
	}
}

func writeReport(rep *report, dir string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(markdown(rep)), 0o644)
}

func markdown(rep *report) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := rep.Machine
	p("# Producers and consumer benchmark, %s\n\n", rep.Started)
	p("Written by `tools/bazel run //go/bench:producers_consumer` (or `//go/bench:failover`; docs/performance.md explains each figure).\n\n")
	p("- Machine: %s, %d cores, %.0f GiB, %s, kernel %s, %s\n", m.CPU, m.Cores, m.MemGiB, m.OS, m.Kernel, m.Go)
	p("- Other load: before the run the machine was busy %.2f cores; during the measured runs processes outside this benchmark used %.2f cores on average (each run's own figure is in its row); load average %s at start, %s at end; the run took %.0f s\n",
		rep.IdleBefore.Machine, rep.OutsideDuringRuns, m.LoadAvgStart, m.LoadAvgEnd, rep.Seconds)
	p("- Services' LOG_LEVEL: %v\n", rep.Settings["service_log_level"])
	for _, n := range rep.Notes {
		p("- %s\n", n)
	}
	if pr := rep.Producers; pr != nil {
		p("\n## Producers\n\n")
		p("Open loop: votes scheduled at the offered rate whatever the answers, latency from each vote's scheduled time (queueing included). Closed loop: N connections back to back (saturation). CPU in cores (1.00 = one core busy); \"outside\" is what the rest of the machine used meanwhile.\n\n")
		p("| target | load | votes/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | not accepted | CPU machine | CPU outside |\n")
		p("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
		for _, t := range pr.Targets {
			for _, r := range t.Runs {
				p("| %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %s | %.2f | %.2f |\n", t.Name, loadName(r.Result), r.Throughput,
					r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max, notAccepted(r), r.CPU.Machine, r.CPU.Other)
			}
		}
		p("\n| target | what a vote is | best closed-loop votes/s | vs bare gRPC echo |\n|---|---|---:|---:|\n")
		for _, t := range pr.Targets {
			p("| %s | %s | %.0f | %.2f |\n", t.Name, t.Via, t.Best, t.SaturationVsEcho)
		}
		p("\nCPU by process during each closed-loop run (cores):\n\n")
		var names []string
		for _, t := range pr.Targets {
			for _, r := range t.Runs {
				for n, v := range r.CPU.Ours {
					if v >= 0.01 && !slices.Contains(names, n) {
						names = append(names, n)
					}
				}
			}
		}
		slices.Sort(names)
		p("| run | %s | outside |\n|---|%s---:|\n", strings.Join(names, " | "), strings.Repeat("---:|", len(names)))
		for _, t := range pr.Targets {
			for _, r := range t.Runs {
				if r.Mode != "closed" {
					continue
				}
				var cells []string
				for _, n := range names {
					cells = append(cells, fmt.Sprintf("%.2f", r.CPU.Ours[n]))
				}
				p("| %s, %d conns | %s | %.2f |\n", t.Name, r.Conns, strings.Join(cells, " | "), r.CPU.Other)
			}
		}
		p("\nMemory of the processes serving each target, at the end (peak = VmHWM over the process's life):\n\n| target | process | peak RSS MiB | RSS MiB |\n|---|---|---:|---:|\n")
		for _, t := range pr.Targets {
			for _, pm := range t.Processes {
				p("| %s | %s | %.1f | %.1f |\n", t.Name, pm.Name, pm.Peak, pm.RSS)
			}
		}
	}
	if c := rep.Consumer; c != nil {
		p("\n## Consumer\n\n")
		env := "defaults"
		if len(c.Env) > 0 {
			env = strings.Join(c.Env, " ")
		}
		p("A backlog of %d votes written straight to Kafka (queue.Encode), then the consumer started (%s) and timed until Redis `tally:votes:total` reached %d.\n\n", c.Backlog, env, c.Backlog)
		p("| start → ready s | start → first count s | drain s (first → last count) | drain votes/s | start → all counted s | exact | consumer peak RSS MiB | exit after SIGTERM |\n|---:|---:|---:|---:|---:|---|---:|---:|\n")
		p("| %.2f | %.2f | %.2f | %.0f | %.2f | %v | %.1f | %d |\n", c.ReadyS, c.FirstS, c.DrainS, c.DrainRate, c.DoneS, c.Exact, c.Memory.Peak, c.ExitCode)
		p("\nBaselines, same servers, same run (after the drain):\n\n| baseline | rate | what |\n|---|---:|---|\n")
		for _, r := range c.Baselines {
			extra := ""
			if r.Error != "" {
				extra = " — ERROR: " + r.Error
			}
			p("| %s | %.0f %s/s | %s%s |\n", r.Name, r.PerS, r.Unit, r.What, extra)
		}
		if c.Insert.PerS > 0 {
			p("\nDrain against the MongoDB-wire server's own insert rate in this run: %.0f votes/s ÷ %.0f docs/s (%s) = **%.2f**.\n",
				c.DrainRate, c.Insert.PerS, c.Insert.What, c.DrainVsInsert)
		}
		if len(c.Growth) > 0 {
			p("\nStores' size as the votes were counted (every %d, and at the end):\n\n| votes counted | Redis used_memory MiB | Redis dataset MiB | Redis keys | MongoDB dataSize MiB | MongoDB storageSize MiB | MongoDB files MiB |\n|---:|---:|---:|---:|---:|---:|---:|\n", c.GrowthEvery)
			for _, g := range c.Growth {
				p("| %d | %.2f | %.2f | %d | %.0f | %.0f | %.0f |\n", g.Votes, mib(g.RedisUsed), mib(g.RedisDataset), g.RedisKeys, mib(g.MongoData), mib(g.MongoStorage), mib(g.MongoFiles))
			}
		}
		p("\nCPU during the drain (cores): machine %.2f, outside %.2f", c.CPU.Machine, c.CPU.Other)
		var names []string
		for n, v := range c.CPU.Ours {
			if v >= 0.01 {
				names = append(names, n)
			}
		}
		slices.SortFunc(names, func(a, b string) int { return cmpFloat(c.CPU.Ours[b], c.CPU.Ours[a]) })
		for _, n := range names {
			p("; %s %.2f", n, c.CPU.Ours[n])
		}
		p(".\n\nChecks:\n\n| what | want | got | ok |\n|---|---:|---:|---|\n")
		for _, ch := range c.Checks {
			p("| %s | %s | %s | %v |\n", ch.What, ch.Want, ch.Got, ch.OK)
		}
	}
	if pl := rep.Pipeline; pl != nil {
		pipelineMarkdown(pl, p)
	}
	if f := rep.Failover; f != nil {
		failoverMarkdown(f, p)
	}
	if w := rep.WasmModes; w != nil {
		p("\n## Wasm producer: AOT, JIT and interpreter\n\n")
		p("The same producer started %d times in each WasmEdge mode: time from exec to the first 200 on `/healthz` (listening) and on `/readyz` (Kafka's metadata fetched), RSS when ready (medians); then a closed loop on the last start (peak RSS = VmHWM after it). Module %d bytes; with its AOT code %d bytes; `wasmedge compile` of it took %.1f s.\n\n",
			len(w.Modes[0].Starts), w.ModuleBytes, w.AOTBytes, w.CompileS)
		p("| mode | command | listening ms | ready ms | RSS ready MiB (anon + file) | load | votes/s | p50 ms | p99 ms | not accepted | peak RSS MiB |\n|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|\n")
		for _, m := range w.Modes {
			r := m.Load
			if m.Error != "" {
				first, _, _ := strings.Cut(m.Error, "\n")
				p("| %s | `%s` | failed: %s | | | | | | | | |\n", m.Name, m.Command, first)
				continue
			}
			p("| %s | `%s` | %.1f | %.1f | %.1f (%.1f + %.1f) | %d conns | %.0f | %.2f | %.2f | %s | %.1f |\n", m.Name, m.Command, m.ListeningMs, m.ReadyMs, m.ReadyRSS,
				m.ReadyAnon, m.ReadyFile, r.Conns, r.Throughput, r.Latency.P50, r.Latency.P99, notAccepted(r), m.PeakRSS)
		}
		p("\nEach start (listening / ready ms, RSS MiB):\n\n")
		for _, m := range w.Modes {
			var parts []string
			for _, s := range m.Starts {
				parts = append(parts, fmt.Sprintf("%.1f / %.1f, %.1f", s.ListeningMs, s.ReadyMs, s.RSS))
			}
			p("- %s: %s\n", m.Name, strings.Join(parts, "; "))
		}
	}
	p("\n## Memory of every process at the end\n\n| process | pid | peak RSS MiB | RSS MiB |\n|---|---:|---:|---:|\n")
	for _, pm := range rep.Processes {
		p("| %s | %d | %.1f | %.1f |\n", pm.Name, pm.PID, pm.Peak, pm.RSS)
	}
	var profiles []cpuProfile
	if rep.Consumer != nil {
		profiles = append(profiles, rep.Consumer.Profiles...)
	}
	if rep.Producers != nil {
		for _, t := range rep.Producers.Targets {
			profiles = append(profiles, t.Profiles...)
		}
	}
	if rep.Pipeline != nil {
		profiles = append(profiles, rep.Pipeline.Profiles...)
	}
	if len(profiles) > 0 {
		p("\n## Profiles\n\nFiles beside this one (`go tool pprof -top FILE`, or `-http=:0`); the head of each:\n")
		for _, pr := range profiles {
			what := fmt.Sprintf("CPU, %d s", pr.Seconds)
			if pr.Kind == "heap" {
				what = "heap in use"
			}
			p("\n<details><summary>%s during %s (%s)</summary>\n\n", pr.Process, pr.During, what)
			if pr.Error != "" {
				p("error: %s\n", pr.Error)
			}
			if pr.Top != "" {
				p("```\n%s\n```\n", pr.Top)
			}
			p("</details>\n")
		}
	}
	return b.String()
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func notAccepted(r runReport) string {
	var parts []string
	for k, v := range r.Errors {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	slices.Sort(parts)
	if r.Unsent > 0 {
		parts = append(parts, fmt.Sprintf("%d unsent", r.Unsent))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// summaryText is the few lines printed at the end of a run.
func summaryText(rep *report) string {
	var b strings.Builder
	if pr := rep.Producers; pr != nil {
		for _, t := range pr.Targets {
			var parts []string
			for _, r := range t.Runs {
				parts = append(parts, fmt.Sprintf("%s: %.0f/s p99 %.1f ms", loadName(r.Result), r.Throughput, r.Latency.P99))
			}
			fmt.Fprintf(&b, "%-11s %s; ×%.2f of echo\n", t.Name, strings.Join(parts, "; "), t.SaturationVsEcho)
		}
	}
	if c := rep.Consumer; c != nil {
		fmt.Fprintf(&b, "consumer    %d votes drained in %.1f s: %.0f votes/s (%.2f of insertMany's %.0f docs/s), exact %v, peak RSS %.1f MiB\n", c.Backlog, c.DrainS, c.DrainRate, c.DrainVsInsert, c.Insert.PerS, c.Exact, c.Memory.Peak)
		for _, r := range c.Baselines {
			fmt.Fprintf(&b, "  %-30s %.0f %s/s\n", r.Name, r.PerS, r.Unit)
		}
	}
	if pl := rep.Pipeline; pl != nil {
		pipelineSummary(pl, &b)
	}
	if f := rep.Failover; f != nil {
		failoverSummary(f, &b)
	}
	if w := rep.WasmModes; w != nil {
		for _, m := range w.Modes {
			if m.Error != "" {
				fmt.Fprintf(&b, "wasm %-11s failed: %s\n", m.Name, m.Error)
				continue
			}
			fmt.Fprintf(&b, "wasm %-11s ready in %.0f ms, %.1f MiB; %d conns: %.0f/s p99 %.1f ms, peak %.1f MiB\n",
				m.Name, m.ReadyMs, m.ReadyRSS, m.Load.Conns, m.Load.Throughput, m.Load.Latency.P99, m.PeakRSS)
		}
	}
	return b.String()
}
