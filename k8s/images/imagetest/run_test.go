package imagetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAPIImageRuns unpacks the API image into a directory and runs its entrypoint there as the
// image says (user, working directory, environment), in a bubblewrap container whose root is
// that directory and nothing else: node, its libraries and the app's node_modules must all be in
// the image for GET /healthz to answer.
func TestAPIImageRuns(t *testing.T) {
	l := layout{dir: runfile(os.Getenv("API_LAYOUT"))}
	_, cfg := l.image(t)
	if cfg.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("created %q, want 1970-01-01T00:00:00Z", cfg.Created)
	}
	if cfg.Config.User == "" || strings.HasPrefix(cfg.Config.User, "0") {
		t.Fatalf("user %q, want a non-root uid", cfg.Config.User)
	}
	root := t.TempDir()
	l.unpack(t, root)

	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatalf("bwrap is not on PATH: %v", err)
	}
	uid, gid, _ := strings.Cut(cfg.Config.User, ":")
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	args := []string{
		"--bind", root, "/", "--proc", "/proc", "--dev", "/dev",
		"--unshare-user", "--uid", uid, "--gid", gid,
		"--chdir", cfg.Config.WorkingDir, "--clearenv",
	}
	for _, kv := range append(cfg.Config.Env, "HOST=127.0.0.1", "PORT="+port,
		"MONGO_URL=mongodb://127.0.0.1:1/", "REDIS_URL=redis://127.0.0.1:1") {
		name, value, _ := strings.Cut(kv, "=")
		args = append(args, "--setenv", name, value)
	}
	args = append(append(args, cfg.Config.Entrypoint...), cfg.Config.Cmd...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bwrap, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("container output:\n%s", logs.String())
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the API exited before answering: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var health struct{ Status string }
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || health.Status != "ok" {
				t.Fatalf("GET /healthz: %s %s", resp.Status, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// SIGTERM, as Kubernetes sends it: the API closes gracefully and exits 0. bwrap does not
	// forward signals, so it goes to bwrap's child, the entrypoint.
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(children))
	if len(pids) != 1 {
		t.Fatalf("bwrap has children %q, want the entrypoint alone", pids)
	}
	pid, err := strconv.Atoi(pids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM the API exited with %v, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("the API did not exit within 15 s of SIGTERM")
	}
}
