package imagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.yaml.in/yaml/v3"
)

// The servers built here in place of upstream images (Redis from Debian's package, the
// MongoDB-wire server) run as the real-node test's render (//k8s:realnode_manifests) runs them:
// the image its reference pins, the container's arguments, user and mounts, a read-only root
// with only the volumes writable, and its probes.

// podSpec is the part of a rendered pod template these tests run.
type podSpec struct {
	SecurityContext struct {
		RunAsUser  int `yaml:"runAsUser"`
		RunAsGroup int `yaml:"runAsGroup"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef struct{ Name string } `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		ReadinessProbe struct {
			Exec      *struct{ Command []string } `yaml:"exec"`
			TCPSocket *struct{ Port string }      `yaml:"tcpSocket"`
		} `yaml:"readinessProbe"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
		SecurityContext struct {
			ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
		} `yaml:"securityContext"`
	} `yaml:"containers"`
}

// renderedPod finds a StatefulSet of the real-node render.
func renderedPod(t *testing.T, name string) podSpec {
	t.Helper()
	f, err := os.Open(runfile(os.Getenv("REALNODE_MANIFESTS")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct{ Name string }
			Spec     struct {
				Template struct {
					Spec podSpec `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind == "StatefulSet" && doc.Metadata.Name == name {
			return doc.Spec.Template.Spec
		}
	}
	t.Fatalf("no StatefulSet %s in //k8s:realnode_manifests", name)
	return podSpec{}
}

// container is one rendered container made runnable here: the image's root unpacked, the
// volumes as directories, the Secrets' values made up.
type container struct {
	t       *testing.T
	root    string
	uid     string
	gid     string
	workdir string
	command []string
	env     []string
	mounts  map[string]string // path in the container -> host directory
	vars    map[string]string // the manifest's variables -> their values
	secrets map[string]string // Secret -> its made-up password
}

func newContainer(t *testing.T, pod podSpec, name, image string) *container {
	t.Helper()
	spec := pod.Containers[0]
	if spec.Name != name {
		t.Fatalf("the first container is %s, want %s", spec.Name, name)
	}
	l, ok := images(t)[image]
	if !ok {
		t.Fatalf("no image %s", image)
	}
	// The render pins exactly the image built here.
	manifestDigest, _ := l.manifest(t)
	if !strings.HasSuffix(spec.Image, "/"+image+"@"+manifestDigest) {
		t.Fatalf("the render runs %s, not the image built here (%s)", spec.Image, manifestDigest)
	}
	if !spec.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("%s: the root file system is writable", name)
	}
	_, cfg := l.image(t)
	c := &container{
		t: t, root: t.TempDir(), workdir: cfg.Config.WorkingDir,
		uid: strconv.Itoa(pod.SecurityContext.RunAsUser), gid: strconv.Itoa(pod.SecurityContext.RunAsGroup),
		env: cfg.Config.Env, mounts: map[string]string{}, vars: map[string]string{}, secrets: map[string]string{},
	}
	if c.workdir == "" {
		c.workdir = "/"
	}
	l.unpack(t, c.root)
	for _, m := range spec.VolumeMounts {
		c.mounts[m.MountPath] = t.TempDir()
	}
	for _, e := range spec.Env {
		value := e.Value
		if e.ValueFrom != nil {
			// Secrets that share a name share a value, as the Secrets //k8s:apply makes.
			value = c.secret(e.ValueFrom.SecretKeyRef.Name)
		}
		c.env = append(c.env, e.Name+"="+value)
		c.vars[e.Name] = value
	}
	// Kubernetes expands $(VAR) in args from the container's environment.
	varRef := regexp.MustCompile(`\$\(([A-Z_]+)\)`)
	args := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		args[i] = varRef.ReplaceAllStringFunc(a, func(ref string) string { return c.vars[ref[2:len(ref)-1]] })
	}
	c.command = append(append([]string{}, cfg.Config.Entrypoint...), args...)
	return c
}

func (c *container) secret(name string) string {
	if v, ok := c.secrets[name]; ok {
		return v
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		c.t.Fatal(err)
	}
	c.secrets[name] = hex.EncodeToString(b)
	return c.secrets[name]
}

// bwrap runs argv in the container: its root read-only, its volumes writable, as its user.
func (c *container) bwrap(env []string, argv ...string) *exec.Cmd {
	c.t.Helper()
	bin, err := exec.LookPath("bwrap")
	if err != nil {
		c.t.Fatalf("bwrap is not on PATH: %v", err)
	}
	// The root is made read-only once the mount points are in it (readOnlyRootFilesystem); the
	// volumes stay writable.
	args := []string{"--bind", c.root, "/"}
	for path, dir := range c.mounts {
		args = append(args, "--bind", dir, path)
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/",
		"--unshare-user", "--uid", c.uid, "--gid", c.gid, "--chdir", c.workdir, "--clearenv")
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		args = append(args, "--setenv", name, value)
	}
	return exec.Command(bin, append(args, argv...)...)
}

// server is the container's main process.
type server struct {
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	exited chan error
}

func (c *container) start(extra ...string) *server {
	c.t.Helper()
	s := &server{logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	s.cmd = c.bwrap(c.env, append(append([]string{}, c.command...), extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	c.t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.exited
		}
		if c.t.Failed() {
			c.t.Logf("%s output:\n%s", c.command[0], s.logs)
		}
	})
	return s
}

// waitPort waits for addr to accept connections (a tcpSocket probe), failing if the server exits.
func (s *server) waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("exited before listening: %v", err)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections after 30 s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM, as the kubelet does, to bwrap's child (bwrap forwards no signal), and
// wants a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(bwrapChild(t, s.cmd.Process.Pid), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
}

func TestRedisImageRunsAsTheManifestRunsIt(t *testing.T) {
	pod := renderedPod(t, "redis")
	c := newContainer(t, pod, "redis", "redis")
	if c.mounts["/data"] == "" || c.workdir != "/data" {
		t.Fatalf("Redis's data: mounts %v, working directory %s; want the volume at /data, Redis's dir", c.mounts, c.workdir)
	}
	// The only change to the manifest's command: a free loopback port instead of 6379 on every
	// address (the test shares the machine's network).
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	listen := []string{"--port", port, "--bind", host}
	s := c.start(listen...)
	s.waitPort(t, addr)
	ctx := context.Background()

	// The readiness probe, run in the container as the kubelet runs it (pointed at the port).
	probe := pod.Containers[0].ReadinessProbe.Exec
	if probe == nil || len(probe.Command) != 3 || probe.Command[0] != "sh" {
		t.Fatalf("readiness probe %+v, want sh -c ...", probe)
	}
	probeCmd := []string{"sh", "-c", strings.Replace(probe.Command[2], "redis-cli", "redis-cli -p "+port, 1)}
	if out, err := c.bwrap(c.env, probeCmd...).CombinedOutput(); err != nil {
		t.Errorf("readiness probe %q: %v\n%s", probeCmd, err, out)
	}
	wrongAuth := append(append([]string{}, c.env...), "REDISCLI_AUTH=wrong")
	if err := c.bwrap(wrongAuth, probeCmd...).Run(); err == nil {
		t.Error("the readiness probe passes with a wrong password: it checks nothing")
	}

	// The consumer's ACL user from the manifest's arguments: its keys and commands, nothing else.
	consumer := redis.NewClient(&redis.Options{Addr: addr, Username: "consumer", Password: c.vars["CONSUMER_PASSWORD"]})
	defer consumer.Close()
	key := strings.Replace(userKeyPattern(t, c.command, "consumer"), "*", "imagetest", -1)
	if err := consumer.HIncrBy(ctx, key, "yes", 3).Err(); err != nil {
		t.Fatalf("consumer HINCRBY %s: %v", key, err)
	}
	if err := consumer.Set(ctx, "not-a-tally-key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("consumer SET outside its keys: %v, want NOPERM", err)
	}
	if err := consumer.ConfigGet(ctx, "dir").Err(); err == nil {
		t.Error("consumer may run CONFIG")
	}
	admin := redis.NewClient(&redis.Options{Addr: addr, Password: c.vars["REDIS_PASSWORD"]})
	defer admin.Close()
	for setting, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction", "dir": "/data"} {
		got, err := admin.ConfigGet(ctx, setting).Result()
		if err != nil || got[setting] != want {
			t.Errorf("CONFIG GET %s: %v %v, want %s", setting, got, err, want)
		}
	}
	s.stop(t)

	// The append-only file is on the volume, and a restart on it has the counts back.
	if _, err := os.Stat(filepath.Join(c.mounts["/data"], "appendonlydir")); err != nil {
		t.Errorf("no append-only file on the volume: %v", err)
	}
	s = c.start(listen...)
	s.waitPort(t, addr)
	if got, err := admin.HGet(ctx, key, "yes").Result(); err != nil || got != "3" {
		t.Errorf("after a restart %s yes = %q, %v; want 3", key, got, err)
	}
	s.stop(t)
}

// userKeyPattern is the first key pattern (~pattern) of an ACL user in redis-server's arguments.
func userKeyPattern(t *testing.T, args []string, user string) string {
	t.Helper()
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "--user" || args[i+1] != user {
			continue
		}
		for _, a := range args[i+2:] {
			if a == "--user" {
				break
			}
			if strings.HasPrefix(a, "~") {
				return a[1:]
			}
		}
	}
	t.Fatalf("no key pattern for Redis user %s in %q", user, args)
	return ""
}

func TestFerretDBImageRunsAsTheManifestRunsIt(t *testing.T) {
	pod := renderedPod(t, "mongodb")
	c := newContainer(t, pod, "mongodb", "ferretdb")
	if probe := pod.Containers[0].ReadinessProbe.TCPSocket; probe == nil {
		t.Errorf("readiness probe %+v, want the port", pod.Containers[0].ReadinessProbe)
	}
	if c.mounts["/data/db"] == "" {
		t.Fatalf("mounts %v, want the volume at /data/db", c.mounts)
	}
	// The only change to the manifest's command: a free loopback port instead of 27017 on every
	// address.
	addr := freeAddr(t)
	for i, a := range c.command {
		if a == "0.0.0.0:27017" {
			c.command[i] = addr
		}
	}
	s := c.start()
	s.waitPort(t, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	logs := client.Database("tally").Collection("logs")
	if _, err := logs.InsertOne(ctx, bson.D{{Key: "vote", Value: "imagetest"}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	s.stop(t)

	// Its data is on the volume: a restart on it finds the document.
	s = c.start()
	s.waitPort(t, addr)
	var got bson.M
	if err := logs.FindOne(ctx, bson.D{{Key: "vote", Value: "imagetest"}}).Decode(&got); err != nil {
		t.Errorf("after a restart: %v", err)
	}
	s.stop(t)
}
