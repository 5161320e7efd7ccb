// Package stack starts Tally's local servers (Kafka, Redis, the MongoDB-wire server) and, later,
// its services as supervised processes: each one's start command and readiness check is defined
// once here and used both by `bazel run //:up` and by the integration-test harness.
//
// process-compose would be the obvious supervisor, but the Go module proxy refuses it here
// (docs/build.md); what remains is small: process groups, prefixed logs, readiness, ordered stop.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Process is one supervised program.
type Process struct {
	Name string
	// Args is the program and its arguments.
	Args []string
	// Env is added to the supervisor's environment (KEY=VALUE).
	Env []string
	// Needs names processes that must be ready before this one starts.
	Needs []string
	// Addr is what clients connect to, printed when ready.
	Addr string
	// Setup runs before every start (e.g. writing config, formatting storage once).
	Setup func(ctx context.Context) error
	// Ready returns nil once the process serves; it is polled until then.
	Ready func(ctx context.Context) error
}

// Timeouts of the supervisor; a ready check or a stop that takes longer is a failure. The ready
// timeout bounds a start that hangs, not a slow one: three Kafka JVMs starting together on a
// loaded 2-core machine (load average 34) took more than 90 s.
const (
	ReadyTimeout = 180 * time.Second
	StopTimeout  = 10 * time.Second
	readyPoll    = 100 * time.Millisecond
)

// Stack is a set of running processes, stopped in reverse start order.
type Stack struct {
	logs    *prefixWriter
	procs   map[string]Process
	order   []string // start order
	running map[string]*running
	exited  chan error
	mu      sync.Mutex
}

type running struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // valid after done
	stop bool          // the supervisor asked it to stop
}

// Start starts procs, each once the processes it needs are ready, and returns when all are ready.
// On any failure it stops what it started and returns the error. Logs go to out, prefixed.
func Start(ctx context.Context, out io.Writer, procs []Process) (*Stack, error) {
	s := &Stack{
		logs:    newPrefixWriter(out, procs),
		procs:   make(map[string]Process, len(procs)),
		running: make(map[string]*running, len(procs)),
		exited:  make(chan error, len(procs)),
	}
	for _, p := range procs {
		if _, dup := s.procs[p.Name]; dup {
			return nil, fmt.Errorf("stack: process %q defined twice", p.Name)
		}
		s.procs[p.Name] = p
	}
	for _, p := range procs {
		for _, need := range p.Needs {
			if _, ok := s.procs[need]; !ok {
				return nil, fmt.Errorf("stack: %s needs %q, which is not in the stack", p.Name, need)
			}
		}
	}
	if err := s.startAll(ctx, procs); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) startAll(ctx context.Context, procs []Process) error {
	ready := make(map[string]bool, len(procs))
	started := make(map[string]bool, len(procs))
	results := make(chan readyResult, len(procs))
	pending := 0
	for len(ready) < len(procs) {
		for _, p := range procs {
			if started[p.Name] || !allReady(p.Needs, ready) {
				continue
			}
			started[p.Name] = true
			if err := s.start(ctx, p); err != nil {
				return err
			}
			pending++
			go func() { results <- readyResult{p.Name, s.waitReady(ctx, p)} }()
		}
		if pending == 0 {
			return errors.New("stack: processes need each other in a cycle")
		}
		r := <-results
		pending--
		if r.err != nil {
			return fmt.Errorf("%s did not become ready: %w", r.name, r.err)
		}
		ready[r.name] = true
	}
	return nil
}

type readyResult struct {
	name string
	err  error
}

func allReady(needs []string, ready map[string]bool) bool {
	for _, n := range needs {
		if !ready[n] {
			return false
		}
	}
	return true
}

func (s *Stack) start(ctx context.Context, p Process) error {
	if p.Setup != nil {
		if err := p.Setup(ctx); err != nil {
			return fmt.Errorf("%s setup: %w", p.Name, err)
		}
	}
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	w := s.logs.For(p.Name)
	cmd.Stdout, cmd.Stderr = w, w
	// Own process group, so a stop reaches the program's children too (the JVM's, say); and
	// killed with the supervisor, so nothing outlives a crashed //:up or test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	r := &running{cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.running[p.Name] = r
	s.order = append(slices.DeleteFunc(s.order, func(n string) bool { return n == p.Name }), p.Name)
	s.mu.Unlock()
	go func() {
		r.err = cmd.Wait()
		w.Flush()
		s.mu.Lock()
		expected := r.stop
		s.mu.Unlock()
		close(r.done)
		if !expected {
			s.exited <- fmt.Errorf("%s exited unexpectedly: %v", p.Name, r.err)
		}
	}()
	return nil
}

func (s *Stack) waitReady(ctx context.Context, p Process) error {
	if p.Ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	s.mu.Lock()
	r := s.running[p.Name]
	s.mu.Unlock()
	var last error
	for {
		probe, cancelProbe := context.WithTimeout(ctx, 5*time.Second)
		last = p.Ready(probe)
		cancelProbe()
		if last == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("exited before it was ready (%v); last check: %w", r.err, last)
		case <-ctx.Done():
			return fmt.Errorf("%w; last check: %w", ctx.Err(), last)
		case <-time.After(readyPoll):
		}
	}
}

// Exited reports processes that exit without being asked to.
func (s *Stack) Exited() <-chan error { return s.exited }

// Restart stops one process and starts it again, waiting until it is ready.
func (s *Stack) Restart(ctx context.Context, name string) error {
	if err := s.StopOne(name); err != nil {
		return err
	}
	return s.StartOne(ctx, name)
}

// StartOne starts a stopped process of the stack again and waits until it is ready.
func (s *Stack) StartOne(ctx context.Context, name string) error {
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("stack: no process %q", name)
	}
	if err := s.start(ctx, p); err != nil {
		return err
	}
	if err := s.waitReady(ctx, p); err != nil {
		return fmt.Errorf("%s did not become ready: %w", name, err)
	}
	return nil
}

// KillOne SIGKILLs one process's group, as a crashed machine would end it: no shutdown, no
// flush. StartOne starts it again.
func (s *Stack) KillOne(name string) error {
	return s.stopOne(name, syscall.SIGKILL)
}

// StopOne stops one process: SIGTERM to its group, SIGKILL after StopTimeout.
func (s *Stack) StopOne(name string) error {
	return s.stopOne(name, syscall.SIGTERM)
}

func (s *Stack) stopOne(name string, sig syscall.Signal) error {
	s.mu.Lock()
	r, ok := s.running[name]
	if ok {
		r.stop = true
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("stack: %q is not running", name)
	}
	pgid := -r.cmd.Process.Pid
	_ = syscall.Kill(pgid, sig)
	select {
	case <-r.done:
	case <-time.After(StopTimeout):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-r.done
	}
	// Children that ignored SIGTERM after their parent exited.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	s.mu.Lock()
	delete(s.running, name)
	s.mu.Unlock()
	return nil
}

// Stop stops every running process, the last started first.
func (s *Stack) Stop() {
	s.mu.Lock()
	order := slices.Clone(s.order)
	s.mu.Unlock()
	for _, name := range slices.Backward(order) {
		s.mu.Lock()
		_, ok := s.running[name]
		s.mu.Unlock()
		if ok {
			_ = s.StopOne(name)
		}
	}
}

// prefixWriter writes each line of each process as "name | line", whole lines at a time.
type prefixWriter struct {
	mu    sync.Mutex
	out   io.Writer
	width int
}

func newPrefixWriter(out io.Writer, procs []Process) *prefixWriter {
	w := &prefixWriter{out: out}
	for _, p := range procs {
		w.width = max(w.width, len(p.Name))
	}
	return w
}

// For returns the writer of one process's output.
func (w *prefixWriter) For(name string) *lineWriter {
	return &lineWriter{parent: w, prefix: fmt.Sprintf("%-*s | ", w.width, name)}
}

type lineWriter struct {
	parent  *prefixWriter
	prefix  string
	pending []byte
	mu      sync.Mutex
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, p...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			break
		}
		l.emit(l.pending[:i])
		l.pending = l.pending[i+1:]
	}
	return len(p), nil
}

// Flush writes a last line that had no newline.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		l.emit(l.pending)
		l.pending = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	l.parent.mu.Lock()
	defer l.parent.mu.Unlock()
	fmt.Fprintf(l.parent.out, "%s%s\n", l.prefix, line)
}
