package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// cpuProfile is one CPU profile the run took, with the head of `go tool pprof -top` for it.
type cpuProfile struct {
	Process string `json:"process"`
	During  string `json:"during"`
	File    string `json:"file"`
	Seconds int    `json:"seconds"`
	Kind    string `json:"kind"` // cpu, or heap (in use at one moment)
	Top     string `json:"top,omitempty"`
	Error   string `json:"error,omitempty"`
}

// profileURL takes a CPU profile of seconds from a service's /debug/pprof/profile (served when
// DEBUG_PPROF is on) into dir.
func profileURL(ctx context.Context, base, process, during string, seconds int, dir string) cpuProfile {
	return fetchProfile(ctx, base, fmt.Sprintf("profile?seconds=%d", seconds), process, during, "cpu", seconds, dir)
}

// heapProfile takes a service's heap profile (what is live, and what was allocated).
func heapProfile(ctx context.Context, base, process, during, dir string) cpuProfile {
	return fetchProfile(ctx, base, "heap", process, during, "heap", 0, dir)
}

func fetchProfile(ctx context.Context, base, query, process, during, kind string, seconds int, dir string) cpuProfile {
	p := cpuProfile{Process: process, During: during, Seconds: seconds, Kind: kind,
		File: fmt.Sprintf("%s-%s.%s.pprof", slug(during), slug(process), kind)}
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+30)*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/"+query, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/debug/pprof/%s: %s", base, query, resp.Status)
		}
		f, err := os.Create(filepath.Join(dir, p.File))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}()
	if err != nil {
		p.Error, p.File = err.Error(), ""
	}
	return p
}

// profileSelf takes a CPU profile of this process (the load generator) for seconds.
func profileSelf(during string, seconds int, dir string) cpuProfile {
	p := cpuProfile{Process: "loadgen", During: during, Seconds: seconds, Kind: "cpu",
		File: fmt.Sprintf("%s-loadgen.cpu.pprof", slug(during))}
	f, err := os.Create(filepath.Join(dir, p.File))
	if err == nil {
		defer f.Close()
		if err = pprof.StartCPUProfile(f); err == nil {
			time.Sleep(time.Duration(seconds) * time.Second)
			pprof.StopCPUProfile()
		}
	}
	if err != nil {
		p.Error, p.File = err.Error(), ""
	}
	return p
}

// summarize fills in each profile's Top from `go tool pprof -top` (the toolchain's go, if there
// is one on PATH), and writes the whole listing beside the profile.
func summarize(profiles []cpuProfile, dir string) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return
	}
	for i := range profiles {
		p := &profiles[i]
		if p.File == "" {
			continue
		}
		var cum []byte
		for _, mode := range []string{"top", "cum"} {
			args := []string{"tool", "pprof", "-top", "-nodecount=60"}
			if p.Kind == "heap" {
				args = append(args, "-sample_index=inuse_space")
			}
			if mode == "cum" {
				args = append(args, "-cum")
			}
			cmd := exec.Command(goTool, append(args, filepath.Join(dir, p.File))...)
			cmd.Dir = os.TempDir() // outside any module
			out, err := cmd.Output()
			if err != nil {
				p.Error = "go tool pprof: " + err.Error()
				break
			}
			_ = os.WriteFile(filepath.Join(dir, strings.TrimSuffix(p.File, ".pprof")+"."+mode+".txt"), out, 0o644)
			cum = out
		}
		// The cumulative view says where the time goes (HTTP serving, gRPC, Kafka, GC...).
		lines := strings.Split(strings.TrimSpace(string(cum)), "\n")
		p.Top = strings.Join(lines[:min(len(lines), 30)], "\n")
	}
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
