package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tally-voting/tally/go/test/runfile"
	"github.com/tally-voting/tally/k8s/imagepins"
)

// The settings that choose where the images that are not Tally's programs come from: Redis,
// the MongoDB-wire server, Grafana left out, and which optional images the refs list.

func TestRedisRunsTheImageTheSettingsChoose(t *testing.T) {
	// The upstream image has no verified digest (k8s/image-pins.txt), so only without
	// requireDigests does it render.
	upstream := container(t, find(t, render(t, "MANIFEST_SRCS", func(s *Settings) { s.Images.Redis, s.Images.RequireDigests = "upstream", false }),
		"StatefulSet", "redis"), "redis")
	ours := container(t, find(t, render(t, "MANIFEST_SRCS", func(s *Settings) { s.Images.Redis = "ours" }), "StatefulSet", "redis"), "redis")
	if got := str(upstream, "image"); got != "redis:8.0.6" {
		t.Errorf("images.redis upstream: image %q, want redis:8.0.6", got)
	}
	if got := str(ours, "image"); !strings.HasSuffix(got, "/tally/redis@"+digest) {
		t.Errorf("images.redis ours: image %q, want ours pinned by digest", got)
	}
	// Only the image changes: the same arguments, probes and mounts run either one.
	for _, key := range []string{"args", "env", "readinessProbe", "livenessProbe", "volumeMounts", "securityContext"} {
		if a, b := yamlText(t, upstream[key]), yamlText(t, ours[key]); a != b {
			t.Errorf("images.redis ours changes the container's %s:\n%s\nvs\n%s", key, a, b)
		}
	}
}

// With digests required (the committed settings), a third-party image without a pin is refused
// by name: Redis's upstream image today.
func TestUnpinnedUpstreamImagesAreRefused(t *testing.T) {
	s, err := LoadSettings(runfile.Path(t, "SETTINGS"))
	if err != nil {
		t.Fatal(err)
	}
	s.Images.Redis = "upstream"
	cfg := Config{Values: Values{Settings: s}, Digests: map[string]string{}}
	if cfg.Pins, err = imagepins.Read(runfile.Path(t, "PINS")); err != nil {
		t.Fatal(err)
	}
	var text string
	for _, p := range strings.Fields(os.Getenv("MANIFEST_SRCS")) {
		if strings.HasSuffix(p, "/redis.yaml") {
			text = readFile(t, os.Getenv("TEST_SRCDIR")+"/"+p)
		}
	}
	if _, err := cfg.Manifest("redis.yaml", text); err == nil || !strings.Contains(err.Error(), `"redis:8.0.6" has no digest`) {
		t.Errorf("images.redis upstream with digests required: %v, want redis:8.0.6 refused", err)
	}
}

func TestFerretDBRunsInPlaceOfMongod(t *testing.T) {
	objs := render(t, "MANIFEST_SRCS", func(s *Settings) { s.MongoDB.Members, s.MongoDB.Server = 1, "ferretdb" })
	sts := find(t, objs, "StatefulSet", "mongodb")
	c := container(t, sts, "mongodb")
	if got := str(c, "image"); !strings.HasSuffix(got, "/ferretdb@"+digest) {
		t.Errorf("the member runs %q, want our ferretdb image by digest", got)
	}
	args := list(c, "args")
	if !slices.Equal(args, []any{"-listen", "0.0.0.0:27017", "-data-dir", "/data/db"}) {
		t.Errorf("ferretdb's args %v, want it serving on every address of the pod, its data on the volume", args)
	}
	mounts := map[string]string{}
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	if mounts["/data/db"] != "data" || mounts["/tmp"] == "" {
		t.Errorf("ferretdb's mounts %v, want the data volume at /data/db and a writable /tmp", mounts)
	}
	if n := len(list(sts, "spec", "template", "spec", "initContainers")); n != 0 {
		t.Errorf("%d init containers: the key file is mongod's", n)
	}
	if str(c, "readinessProbe", "tcpSocket", "port") != "mongodb" {
		t.Errorf("ferretdb's readiness probe %v, want the port (the image has no client)", at(c, "readinessProbe"))
	}
	for _, o := range objs {
		if text := yamlText(t, map[string]any(o)); strings.Contains(text, "mongo:") || strings.Contains(text, "mongodb-keyfile") {
			t.Errorf("with ferretdb, %s still names mongod's image or key file", o.id())
		}
	}
	// Its clients connect without a replica set or a login, which it has not.
	clients := map[string]map[string]any{
		"consumer": container(t, find(t, objs, "Deployment", "consumer"), "consumer"),
		"audit":    cronContainer(t, find(t, objs, "CronJob", "audit"), "audit"),
	}
	for name, c := range clients {
		if got := envValue(c, "MONGO_URL"); got != "mongodb://mongodb-0.mongodb.tally-data.svc:27017/" {
			t.Errorf("with ferretdb the %s connects with %q", name, got)
		}
	}
}

func yamlText(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cronContainer returns a CronJob's container by name.
func cronContainer(t *testing.T, cron obj, name string) map[string]any {
	t.Helper()
	for _, c := range list(cron, "spec", "jobTemplate", "spec", "template", "spec", "containers") {
		if str(c, "name") == name {
			return c.(map[string]any)
		}
	}
	t.Fatalf("%s has no container %s", cron.id(), name)
	return nil
}

func TestGrafanaCanBeLeftOut(t *testing.T) {
	kinds := func(objs []obj) []string {
		var ids []string
		for _, o := range objs {
			if str(o, "metadata", "name") == "grafana" && str(o, "kind") != "NetworkPolicy" {
				ids = append(ids, str(o, "kind"))
			}
		}
		slices.Sort(ids)
		return ids
	}
	if got := kinds(render(t, "MANIFEST_SRCS", nil)); !slices.Equal(got, []string{"Deployment", "Service", "ServiceAccount"}) {
		t.Errorf("by default Grafana's objects are %v", got)
	}
	if got := kinds(render(t, "MANIFEST_SRCS", func(s *Settings) { s.Images.Grafana = "none" })); len(got) != 0 {
		t.Errorf("images.grafana none still renders Grafana's %v", got)
	}
}

func TestImageChoicesThatCannotWorkAreRefused(t *testing.T) {
	good, err := LoadSettings(runfile.Path(t, "SETTINGS"))
	if err != nil {
		t.Fatal(err)
	}
	for want, edit := range map[string]func(*Settings){
		`images.redis is "debian"`:  func(s *Settings) { s.Images.Redis = "debian" },
		`images.strimzi is "mine"`:  func(s *Settings) { s.Images.Strimzi = "mine" },
		`images.grafana is "off"`:   func(s *Settings) { s.Images.Grafana = "off" },
		`images.grafana is "ours"`:  func(s *Settings) { s.Images.Grafana = "ours" },
		`mongodb.server is "mongo"`: func(s *Settings) { s.MongoDB.Server = "mongo" },
	} {
		s := good
		edit(&s)
		if err := s.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", want, err)
		}
	}
	for _, v := range []string{"", "upstream", "ours"} {
		s := good
		s.Images.Redis = v
		if err := s.Check(); err != nil {
			t.Errorf("images.redis %q: %v", v, err)
		}
	}
}

func TestRefsListTheOptionalImagesTheSettingsRun(t *testing.T) {
	cfg := testConfig()
	cfg.Optional = map[string]string{"strimzi-operator": digest, "strimzi-kafka": digest, "redis": digest, "ferretdb": digest}
	for _, tc := range []struct {
		edit func(*Settings)
		want []string
	}{
		{func(*Settings) {}, []string{"consumer"}},
		{func(s *Settings) { s.Images.Redis = "ours" }, []string{"consumer", "redis"}},
		{func(s *Settings) { s.MongoDB.Server = "ferretdb" }, []string{"consumer", "ferretdb"}},
		{func(s *Settings) { s.Images.Strimzi = "ours" }, []string{"consumer", "strimzi-kafka", "strimzi-operator"}},
	} {
		c := cfg
		c.Values.MongoDB.Server = "mongod"
		tc.edit(&c.Values.Settings)
		if got, err := c.pushed(); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%+v: refs %v, %v; want %v", c.Values.Images, got, err, tc.want)
		}
	}
	// An optional image no setting chooses is refused, not silently pushed or left out.
	cfg.Optional["valkey"] = digest
	if _, err := cfg.pushed(); err == nil || !strings.Contains(err.Error(), `"valkey"`) {
		t.Errorf("an optional image no setting knows: %v", err)
	}
}

// The real-node test's settings (k8s/realnode-settings.yaml) render with every image built here
// and pinned by digest: no third-party image is left for a node that pulls only from the test's
// registry.
func TestRealNodeSettingsRunOnlyImagesBuiltHere(t *testing.T) {
	s, err := LoadSettings(runfile.Path(t, "REALNODE_SETTINGS"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Registry != "127.0.0.1:5000" || s.Repository != "tally" || s.Kafka.Brokers != 1 || s.MongoDB.Members != 1 ||
		!s.MongoDB.FerretDB() || !s.Images.OurStrimzi() || !s.Images.OurRedis() || s.Images.WithGrafana() || !s.Images.RequireDigests {
		t.Errorf("realnode settings %+v", s)
	}
	built := builtImages(t)
	for name, d := range builtOptionalImages(t) {
		built[name] = d
	}
	data, err := os.ReadFile(runfile.Path(t, "REALNODE_MANIFESTS"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`^127\.0\.0\.1:5000/tally/([a-z0-9-]+)@(sha256:[0-9a-f]{64})$`)
	ran := map[string]bool{}
	for _, m := range imageValue.FindAllStringSubmatch(string(data), -1) {
		p := pinned.FindStringSubmatch(m[1])
		if p == nil || built[p[1]] != p[2] {
			t.Errorf("//k8s:realnode_manifests names %s, want an image built here at its digest", m[1])
			continue
		}
		ran[p[1]] = true
	}
	for _, name := range []string{"redis", "ferretdb", "consumer", "grpc-producer", "wasm-producer"} {
		if !ran[name] {
			t.Errorf("//k8s:realnode_manifests does not run %s", name)
		}
	}
}

// builtOptionalImages maps each optional image's bare name to the digest of the layout Bazel built.
func builtOptionalImages(t *testing.T) map[string]string {
	t.Helper()
	built := map[string]string{}
	for _, kv := range os.Environ() {
		key, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(key, "OPTIONAL_IMAGE_") {
			continue
		}
		fields := strings.Fields(value)
		for _, path := range fields[1:] {
			if !strings.HasSuffix(path, ".digest") {
				built[fields[0]] = layoutDigest(t, os.Getenv("TEST_SRCDIR")+"/"+path)
			}
		}
	}
	return built
}
