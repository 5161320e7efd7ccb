package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a process the benchmark starts itself (the consumer, the echo server, a front for
// it), in its own process group and killed if we die.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// startChild starts args with env added to ours; its output goes to logPath. If firstLine is
// set, it receives the program's first line of stdout (the echo server's address).
func startChild(name string, args, env []string, logPath string, firstLine chan<- string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout io.ReadCloser
	if firstLine != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	} else {
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	if firstLine != nil {
		go func() {
			sc := bufio.NewScanner(stdout)
			if sc.Scan() {
				firstLine <- sc.Text()
			}
			close(firstLine)
			for sc.Scan() {
				fmt.Fprintln(logFile, sc.Text())
			}
		}()
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) proc() proc { return proc{c.pid(), c.name} }

// waitHTTP polls url until it answers 200, failing if the child exits first or after timeout.
func (c *child) waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before it was ready: %v (log: %s)", c.name, c.err, c.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: GET %s: %v", c.name, timeout, url, err)
		}
	}
}

// stop sends SIGTERM to the child's group, SIGKILL after 15 s, and returns the exit code.
func (c *child) stop() int {
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
	c.log.Close()
	return c.cmd.ProcessState.ExitCode()
}

// tail is the end of the child's log, for error messages.
func (c *child) tail() string {
	data, _ := os.ReadFile(c.log.Name())
	s := string(data)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}
