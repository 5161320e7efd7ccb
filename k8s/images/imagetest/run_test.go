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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCase is one image started from its own unpacked root: the image's entrypoint, user,
// working directory and environment, plus env (addresses on loopback; every store and broker
// unreachable, which each service must survive), then GET probe must answer 200 with want in
// the body.
type runCase struct {
	image string
	env   func(addr string) []string
	// cmd replaces the image's command, when set.
	cmd      func(addr string) []string
	probe    string
	want     string
	graceful bool // exits 0 on SIGTERM
}

const unreachable = "127.0.0.1:1"

var runCases = []runCase{
	{
		image: "api",
		env: func(addr string) []string {
			host, port, _ := strings.Cut(addr, ":")
			return []string{"HOST=" + host, "PORT=" + port, "MONGO_URL=mongodb://" + unreachable + "/", "REDIS_URL=redis://" + unreachable}
		},
		probe: "/healthz", want: `"status":"ok"`, graceful: true,
	},
	{
		image: "grpc-front",
		env: func(addr string) []string {
			return []string{"HTTP_ADDR=" + addr, "PRODUCER_GRPC_TARGET=" + unreachable}
		},
		probe: "/healthz", want: "ok", graceful: true,
	},
	{
		image: "grpc-producer",
		env: func(addr string) []string {
			return []string{"HTTP_ADDR=" + addr, "GRPC_ADDR=127.0.0.1:0", "KAFKA_BROKERS=" + unreachable}
		},
		probe: "/healthz", want: "ok", graceful: true,
	},
	{
		image: "consumer",
		env: func(addr string) []string {
			return []string{"HTTP_ADDR=" + addr, "KAFKA_BROKERS=" + unreachable,
				"REDIS_URL=redis://" + unreachable, "MONGO_URL=mongodb://" + unreachable + "/"}
		},
		probe: "/healthz", want: "ok", graceful: true,
	},
	{
		// WasmEdge in the image runs the AOT module; settings reach the module through --env.
		image: "wasm-producer",
		cmd: func(addr string) []string {
			return []string{"--env", "LISTEN_ADDR=" + addr, "--env", "KAFKA_BROKERS=" + unreachable, "/app/wasm_producer.wasm"}
		},
		probe: "/healthz", want: `"status":"ok"`,
	},
	{
		image: "web",
		env: func(addr string) []string {
			return []string{"HTTP_ADDR=" + addr, "API_URL=http://" + unreachable}
		},
		probe: "/", want: "<div id=\"app\"", graceful: true,
	},
}

// TestImagesRun starts each image in a bubblewrap container whose root is the image's unpacked
// file system and nothing else, so whatever the program needs (node and its libraries, WasmEdge
// and LLVM, node_modules, the Vue build, CA certificates) must be in the image for the probe
// to answer.
func TestImagesRun(t *testing.T) {
	imgs := images(t)
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatalf("bwrap is not on PATH: %v", err)
	}
	for _, c := range runCases {
		t.Run(c.image, func(t *testing.T) {
			l, ok := imgs[c.image]
			if !ok {
				t.Fatalf("no image %s", c.image)
			}
			_, cfg := l.image(t)
			if cfg.Created != "1970-01-01T00:00:00Z" {
				t.Errorf("created %q, want 1970-01-01T00:00:00Z", cfg.Created)
			}
			uid, gid, _ := strings.Cut(cfg.Config.User, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 {
				t.Fatalf("user %q, want a numeric non-root uid (Kubernetes' runAsNonRoot needs one)", cfg.Config.User)
			}
			root := t.TempDir()
			l.unpack(t, root)
			addr := freeAddr(t)
			command := cfg.Config.Cmd
			if c.cmd != nil {
				command = c.cmd(addr)
			}
			env := cfg.Config.Env
			if c.env != nil {
				env = append(env, c.env(addr)...)
			}
			workdir := cfg.Config.WorkingDir
			if workdir == "" {
				workdir = "/"
			}
			args := []string{
				"--bind", root, "/", "--proc", "/proc", "--dev", "/dev",
				"--unshare-user", "--uid", uid, "--gid", gid,
				"--chdir", workdir, "--clearenv",
			}
			for _, kv := range env {
				name, value, _ := strings.Cut(kv, "=")
				args = append(args, "--setenv", name, value)
			}
			args = append(append(args, cfg.Config.Entrypoint...), command...)
			runAndProbe(t, bwrap, args, addr, c)
		})
	}
}

// TestWasmModuleImage checks the module-only image as a WasmEdge RuntimeClass would take it:
// wasi/wasm32 with the annotations crun and the containerd shims look for, and an entrypoint
// module that serves when WasmEdge runs it. No such runtime is here, so the toolchain's own
// wasmedge runs the module from the unpacked image.
func TestWasmModuleImage(t *testing.T) {
	l := images(t)["wasm-module"]
	if l.dir == "" {
		t.Fatal("no wasm-module image")
	}
	m, cfg := l.image(t)
	var platform struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	}
	if err := json.Unmarshal(l.blob(t, m.Config.Digest), &platform); err != nil {
		t.Fatal(err)
	}
	if platform.OS != "wasi" || platform.Architecture != "wasm32" {
		t.Errorf("platform %s/%s, want wasi/wasm32", platform.OS, platform.Architecture)
	}
	for k, v := range map[string]string{"module.wasm.image/variant": "compat", "run.oci.handler": "wasm"} {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	if len(cfg.Config.Entrypoint) != 1 {
		t.Fatalf("entrypoint %q, want the module alone", cfg.Config.Entrypoint)
	}
	root := t.TempDir()
	l.unpack(t, root)
	wasmedge, err := exec.LookPath("wasmedge")
	if err != nil {
		t.Fatalf("wasmedge is not on PATH: %v", err)
	}
	addr := freeAddr(t)
	args := []string{"--run-mode", "aot", "--env", "LISTEN_ADDR=" + addr, "--env", "KAFKA_BROKERS=" + unreachable,
		filepath.Join(root, cfg.Config.Entrypoint[0])}
	runAndProbe(t, wasmedge, args, addr, runCase{probe: "/healthz", want: `"status":"ok"`})
}

// runAndProbe starts program, waits for c.probe to answer on addr, then sends SIGTERM.
func runAndProbe(t *testing.T, program string, args []string, addr string, c runCase) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, program, args...)
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
			t.Fatalf("exited before answering: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + c.probe)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), c.want) {
				t.Fatalf("GET %s: %s %.300s; want 200 with %s", c.probe, resp.Status, body, c.want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", c.probe, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// SIGTERM, as Kubernetes sends it. bwrap does not forward signals, so it goes to bwrap's
	// child, the entrypoint.
	pid := cmd.Process.Pid
	if filepath.Base(program) == "bwrap" {
		pid = bwrapChild(t, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if c.graceful && err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("still running 15 s after SIGTERM")
	}
}

// bwrapChild is the one child of the bwrap process pid: the image's entrypoint, which gets the
// signals bwrap does not forward.
func bwrapChild(t *testing.T, pid int) int {
	t.Helper()
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(children))
	if len(pids) != 1 {
		t.Fatalf("bwrap has children %q, want the entrypoint alone", pids)
	}
	child, err := strconv.Atoi(pids[0])
	if err != nil {
		t.Fatal(err)
	}
	return child
}
