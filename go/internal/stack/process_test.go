package stack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects the supervisor's prefixed logs from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fileReady is ready once path exists: the process under test creates it.
func fileReady(path string) func(context.Context) error {
	return func(context.Context) error {
		_, err := os.Stat(path)
		return err
	}
}

func TestStartOrdersByNeedsAndStopsInReverse(t *testing.T) {
	dir := t.TempDir()
	order := filepath.Join(dir, "order")
	proc := func(name string, needs ...string) Process {
		marker := filepath.Join(dir, name+".ready")
		return Process{
			Name:  name,
			Needs: needs,
			// Appends its name when started and "stop-<name>" when terminated; the trap is set
			// before it reports ready, or a quick stop could beat it.
			Args: []string{"/bin/sh", "-c", `trap 'echo stop-$0 >> "$1"; exit 0' TERM;
				echo "$0" >> "$1"; echo hello from "$0"; touch "$2"; while :; do sleep 0.05; done`, name, order, marker},
			Ready: fileReady(marker),
		}
	}
	var logs syncBuffer
	s, err := Start(context.Background(), &logs, []Process{proc("app", "db", "queue"), proc("db"), proc("queue", "db")})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	s.Stop()

	got, _ := os.ReadFile(order)
	want := "db\nqueue\napp\nstop-app\nstop-queue\nstop-db\n"
	if string(got) != want {
		t.Fatalf("start/stop order:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(logs.String(), "queue | hello from queue\n") {
		t.Fatalf("logs are not prefixed by process name:\n%s", logs.String())
	}
}

func TestStartFailsWhenAProcessExitsBeforeReady(t *testing.T) {
	var logs syncBuffer
	_, err := Start(context.Background(), &logs, []Process{{
		Name:  "broken",
		Args:  []string{"/bin/sh", "-c", "echo cannot start >&2; exit 3"},
		Ready: func(context.Context) error { return errors.New("not listening") },
	}})
	if err == nil || !strings.Contains(err.Error(), "broken did not become ready") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Start error = %v, want it to name the process and its exit", err)
	}
	if !strings.Contains(logs.String(), "broken | cannot start") {
		t.Fatalf("the process's last words are missing from the logs:\n%s", logs.String())
	}
}

func TestStartRejectsUnknownNeedsAndCycles(t *testing.T) {
	sleep := []string{"/bin/sleep", "30"}
	for _, tc := range []struct {
		name  string
		procs []Process
		want  string
	}{
		{"unknown", []Process{{Name: "a", Args: sleep, Needs: []string{"nope"}}}, `needs "nope"`},
		{"cycle", []Process{{Name: "a", Args: sleep, Needs: []string{"b"}}, {Name: "b", Args: sleep, Needs: []string{"a"}}}, "cycle"},
		{"duplicate", []Process{{Name: "a", Args: sleep}, {Name: "a", Args: sleep}}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), &syncBuffer{}, tc.procs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the stop timeout")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "ready")
	s, err := Start(context.Background(), &syncBuffer{}, []Process{{
		Name:  "stubborn",
		Args:  []string{"/bin/sh", "-c", `trap '' TERM; touch "$0"; while :; do sleep 0.05; done`, marker},
		Ready: fileReady(marker),
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	began := time.Now()
	s.Stop()
	if took := time.Since(began); took < StopTimeout || took > StopTimeout+5*time.Second {
		t.Fatalf("Stop took %v, want about %v (SIGTERM ignored, then SIGKILL)", took, StopTimeout)
	}
}

func TestExitedReportsUnexpectedExits(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ready")
	s, err := Start(context.Background(), &syncBuffer{}, []Process{{
		Name:  "short-lived",
		Args:  []string{"/bin/sh", "-c", `touch "$0"; sleep 0.2; exit 4`, marker},
		Ready: fileReady(marker),
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Stop()
	select {
	case err := <-s.Exited():
		if !strings.Contains(err.Error(), "short-lived exited unexpectedly") {
			t.Fatalf("Exited() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report of the exit")
	}
}
