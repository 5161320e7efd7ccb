package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux this runs on.
const clockTicks = 100

// proc is one process the benchmark watches, named for the report.
type proc struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
}

// procStat is what /proc/<pid>/stat says of a process.
type procStat struct {
	ppid  int
	ticks uint64 // user + system CPU time, in clock ticks
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return procStat{ppid: ppid, ticks: utime + stime}, nil
}

// memory is a process's resident set now and at its peak (VmRSS, VmHWM), in MiB, and what the
// resident set is made of: anonymous memory (heaps, stacks) and file-backed pages (the program
// and its shared libraries, mapped).
type memory struct {
	RSS  float64 `json:"rss_mib"`
	Peak float64 `json:"peak_rss_mib"`
	Anon float64 `json:"rss_anon_mib"`
	File float64 `json:"rss_file_mib"`
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		field := map[string]*float64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}[name]
		fields := strings.Fields(rest)
		if !ok || field == nil || len(fields) == 0 {
			continue
		}
		kib, _ := strconv.ParseFloat(fields[0], 64)
		*field = round1(kib / 1024)
	}
	return m, sc.Err()
}

// machineTicks is the whole machine's busy and total CPU time since boot, from /proc/stat.
func machineTicks() (busy, total uint64, err error) {
	busy, total, _, err = machineTicksSteal()
	return busy, total, err
}

// machineTicksSteal also returns the time stolen by the hypervisor (counted in busy and total).
func machineTicksSteal() (busy, total, steal uint64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var idle uint64
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
		if i == 7 {
			steal = v
		}
	}
	return total - idle, total, steal, nil
}

// stackProcesses are the processes of this run: the stack supervisor (our parent), the servers it
// started (our siblings), this process and the ones we started. Names come from the command line.
func stackProcesses(own []proc) []proc {
	self, parent := os.Getpid(), os.Getppid()
	out := []proc{{self, "loadgen (this benchmark)"}}
	if parent > 1 {
		out = append(out, proc{parent, nameOf(parent)})
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == parent && parent > 1 {
			out = append(out, proc{pid, nameOf(pid)})
		}
	}
	return append(out, own...)
}

// nameOf names a process by its program: kafka for the broker's JVM, otherwise the program's
// file name (redis-server, ferretdb, grpc-front, wasmedge...).
func nameOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return fmt.Sprintf("pid %d", pid)
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	name := filepath.Base(strings.Fields(args[0] + " x")[0])
	switch {
	case name == "java" && strings.Contains(string(data), "kafka.Kafka"):
		return "kafka"
	case strings.HasPrefix(name, "redis-server"): // Redis rewrites its title to "redis-server host:port"
		return "redis"
	case name == "ferretdb":
		return "mongo (ferretdb)"
	case name == "stack":
		return "stack (supervisor)"
	}
	return name
}

// listeningPorts are the TCP ports pid listens on, from /proc/net/tcp{,6} and its descriptors.
func listeningPorts(pid int) []int {
	inodes := map[string]int{} // socket inode → port
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil {
				inodes[f[9]] = int(port)
			}
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var ports []int
	seen := map[int]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if port, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]; ok && !seen[port] {
			seen[port] = true
			ports = append(ports, port)
		}
	}
	return ports
}

// portOwner is the process of procs that listens on port, if any.
func portOwner(procs []proc, port int) (proc, bool) {
	for _, p := range procs {
		for _, l := range listeningPorts(p.PID) {
			if l == port {
				return p, true
			}
		}
	}
	return proc{}, false
}

// cpuMeter measures the CPU used by each watched process, and by the whole machine, between
// start and stop.
type cpuMeter struct {
	procs            []proc
	ticks            map[int]uint64
	busy, all, steal uint64
}

func startCPU(procs []proc) *cpuMeter {
	m := &cpuMeter{procs: procs, ticks: map[int]uint64{}}
	for _, p := range procs {
		if st, err := readStat(p.PID); err == nil {
			m.ticks[p.PID] = st.ticks
		}
	}
	m.busy, m.all, m.steal, _ = machineTicksSteal()
	return m
}

// cpuUse is CPU time per second of wall time, in cores (1.0 is one core kept busy).
type cpuUse struct {
	// Machine is every process on the machine; Ours the processes of the run, by name; Other
	// what the rest of the machine used (the other worker's builds, say).
	Seconds float64 `json:"seconds"`
	Machine float64 `json:"machine_cores"`
	// Steal is CPU time the hypervisor gave to other machines: counted in Machine, not in Other.
	Steal float64            `json:"steal_cores"`
	Ours  map[string]float64 `json:"by_process_cores"`
	Other float64            `json:"other_cores"`
}

func (m *cpuMeter) stop() cpuUse {
	u := m.use()
	outside.add(u.Seconds, u.Other)
	return u
}

// outside accumulates, over every measured window, what the rest of the machine used.
var outside outsideLoad

type outsideLoad struct{ seconds, coreSeconds float64 }

func (o *outsideLoad) add(secs, cores float64) {
	o.seconds += secs
	o.coreSeconds += secs * cores
}

// mean is the time-weighted mean of the outside load over the measured windows, in cores.
func (o *outsideLoad) mean() float64 {
	if o.seconds == 0 {
		return 0
	}
	return round2(o.coreSeconds / o.seconds)
}

// idleOutside measures what the machine uses before the benchmark starts anything: the other
// processes' load.
func idleOutside(d time.Duration) cpuUse {
	m := startCPU(stackProcesses(nil))
	time.Sleep(d)
	return m.use()
}

func (m *cpuMeter) use() cpuUse {
	busy, all, steal, _ := machineTicksSteal()
	cores := float64(runtime.NumCPU())
	wall := float64(all-m.all) / cores // ticks of wall time
	if wall <= 0 {
		return cpuUse{}
	}
	u := cpuUse{Seconds: round2(wall / clockTicks), Machine: round2(float64(busy-m.busy) / wall),
		Steal: round2(float64(steal-m.steal) / wall), Ours: map[string]float64{}}
	var ours float64
	for _, p := range m.procs {
		st, err := readStat(p.PID)
		before, ok := m.ticks[p.PID]
		if err != nil || !ok {
			continue
		}
		c := float64(st.ticks-before) / wall
		u.Ours[p.Name] = round2(u.Ours[p.Name] + c)
		ours += c
	}
	u.Other = round2(max(0, float64(busy-m.busy-(steal-m.steal))/wall-ours))
	return u
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// waitQuiet waits, up to maxWait, for a second in which processes outside the run use less than
// limit cores: the machine is shared, and a run started during someone else's build measures
// the build. It returns the outside load of the last second it measured.
func waitQuiet(procs []proc, limit float64, maxWait time.Duration) float64 {
	deadline := time.Now().Add(maxWait)
	for {
		m := startCPU(procs)
		time.Sleep(time.Second)
		u := m.use()
		if u.Other < limit || time.Now().After(deadline) {
			if u.Other >= limit {
				log.Printf("  the machine is still busy outside the run (%.2f cores); going ahead", u.Other)
			}
			return u.Other
		}
	}
}
