package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tally-voting/tally/go/test/runfile"
	"github.com/tally-voting/tally/k8s/imagepins"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// obj is one rendered object.
type obj map[string]any

// at walks maps by key and lists by index-free "each first" semantics: at(o, "spec", "replicas").
func at(v any, path ...string) any {
	for _, key := range path {
		m, ok := v.(map[string]any)
		if !ok {
			if o, isObj := v.(obj); isObj {
				m = o
			} else {
				return nil
			}
		}
		v = m[key]
	}
	return v
}

func str(v any, path ...string) string { s, _ := at(v, path...).(string); return s }

func list(v any, path ...string) []any { l, _ := at(v, path...).([]any); return l }

func (o obj) id() string {
	return str(o, "kind") + " " + str(o, "metadata", "namespace") + "/" + str(o, "metadata", "name")
}

// find returns the object of kind and name (any namespace), failing the test without it.
func find(t *testing.T, objs []obj, kind, name string) obj {
	t.Helper()
	for _, o := range objs {
		if str(o, "kind") == kind && str(o, "metadata", "name") == name {
			return o
		}
	}
	t.Fatalf("no %s %s among the rendered objects", kind, name)
	return nil
}

// render renders the sources of $env (MANIFEST_SRCS or CLOUDRUN_SRCS) with the repository's
// settings changed by edit, every image of ours at a fixed digest.
func render(t *testing.T, env string, edit func(*Settings)) []obj {
	t.Helper()
	return renderWith(t, env, "SETTINGS", edit)
}

// renderWith renders as render does, from the settings file of $settingsEnv; the images built
// here that run only when chosen (OPTIONAL_IMAGE_<NAME>) are at the same fixed digest.
func renderWith(t *testing.T, env, settingsEnv string, edit func(*Settings)) []obj {
	t.Helper()
	settings, err := LoadSettings(runfile.Path(t, settingsEnv))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&settings)
		if err := settings.Check(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Digests: map[string]string{}, Optional: map[string]string{}}
	cfg.Values.Settings = settings
	if cfg.Pins, err = imagepins.Read(runfile.Path(t, "PINS")); err != nil {
		t.Fatal(err)
	}
	if cfg.Values.Redis.Users, err = RedisUsers(runfile.Path(t, "REDIS_KEYS")); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if key, value, _ := strings.Cut(kv, "="); strings.HasPrefix(key, "IMAGE_") {
			cfg.Digests[strings.Fields(value)[0]] = digest
		} else if strings.HasPrefix(key, "OPTIONAL_IMAGE_") {
			cfg.Optional[strings.Fields(value)[0]] = digest
		}
	}
	var files []string
	for _, p := range strings.Fields(os.Getenv(env)) {
		files = append(files, filepath.Join(os.Getenv("TEST_SRCDIR"), p))
	}
	if len(files) == 0 {
		t.Fatalf("no files in $%s", env)
	}
	out, err := cfg.All(files)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, out)
}

func decodeAll(t *testing.T, stream string) []obj {
	t.Helper()
	var objs []obj
	dec := yaml.NewDecoder(strings.NewReader(stream))
	for {
		// Into a plain map: yaml.v3 would give nested maps the named type too.
		var o map[string]any
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if o != nil {
			objs = append(objs, obj(o))
		}
	}
	return objs
}

// container returns a pod template's container by name.
func container(t *testing.T, workload obj, name string) map[string]any {
	t.Helper()
	for _, c := range list(workload, "spec", "template", "spec", "containers") {
		if str(c, "name") == name {
			return c.(map[string]any)
		}
	}
	t.Fatalf("%s has no container %s", workload.id(), name)
	return nil
}

func envValue(c map[string]any, name string) string {
	for _, e := range list(c, "env") {
		if str(e, "name") == name {
			return str(e, "value")
		}
	}
	return ""
}

func TestIngressServesOnlyTheVoteRoutesOverHTTPS(t *testing.T) {
	objs := render(t, "MANIFEST_SRCS", func(s *Settings) { s.Domain = "votes.example.org" })
	ing := find(t, objs, "Ingress", "tally")
	ann := func(o obj, key string) string { return str(o, "metadata", "annotations", key) }
	if ann(ing, "kubernetes.io/ingress.class") != "gce" {
		t.Error("the Ingress is not GKE's (kubernetes.io/ingress.class: gce)")
	}
	if at(ing, "spec", "defaultBackend") != nil || at(ing, "spec", "tls") != nil {
		t.Error("the Ingress has a default backend or its own TLS secret; GKE's managed certificate is the TLS")
	}

	// Exactly POST /votes of each producer, by host: no /metrics, /healthz, /readyz, no webapp.
	routes := map[string]string{}
	var hosts []string
	for _, rule := range list(ing, "spec", "rules") {
		hosts = append(hosts, str(rule, "host"))
		for _, p := range list(rule, "http", "paths") {
			routes[str(rule, "host")+str(p, "path")+" "+str(p, "pathType")] = str(p, "backend", "service", "name")
		}
	}
	want := map[string]string{
		"grpc.votes.example.org/votes Exact": "grpc-producer",
		"wasm.votes.example.org/votes Exact": "wasm-producer",
	}
	if !maps(routes, want) {
		t.Errorf("routes %v, want exactly %v", routes, want)
	}

	// HTTPS: a managed certificate for every host, HTTP redirected.
	cert := find(t, objs, "ManagedCertificate", ann(ing, "networking.gke.io/managed-certificates"))
	var domains []string
	for _, d := range list(cert, "spec", "domains") {
		domains = append(domains, d.(string))
	}
	if !slices.Equal(domains, hosts) {
		t.Errorf("the managed certificate covers %v, the Ingress serves %v", domains, hosts)
	}
	front := find(t, objs, "FrontendConfig", ann(ing, "networking.gke.io/v1beta1.FrontendConfig"))
	if at(front, "spec", "redirectToHttps", "enabled") != true {
		t.Error("the FrontendConfig does not redirect HTTP to HTTPS")
	}

	// Each backend: container-native (NEG), with a BackendConfig whose health check does not
	// follow Kafka, and pods whose readiness does not either (the 503 contract, docs/api.md).
	for _, name := range want {
		svc := find(t, objs, "Service", name)
		if ann(svc, "cloud.google.com/neg") != `{"ingress": true}` {
			t.Errorf("service %s has no NEG annotation", name)
		}
		var bc struct{ Default string }
		if err := json.Unmarshal([]byte(ann(svc, "cloud.google.com/backend-config")), &bc); err != nil || bc.Default == "" {
			t.Fatalf("service %s names no BackendConfig: %v", name, err)
		}
		cfg := find(t, objs, "BackendConfig", bc.Default)
		if str(cfg, "spec", "healthCheck", "requestPath") != "/healthz" {
			t.Errorf("BackendConfig %s health-checks %q, want /healthz", bc.Default, str(cfg, "spec", "healthCheck", "requestPath"))
		}
		if timeout, _ := at(cfg, "spec", "timeoutSec").(int); timeout < 10 {
			t.Errorf("BackendConfig %s timeout %v s: shorter than the producers' own Kafka timeout", bc.Default, at(cfg, "spec", "timeoutSec"))
		}
		workload := find(t, objs, "Deployment", name)
		for _, c := range list(workload, "spec", "template", "spec", "containers") {
			if path := str(c, "readinessProbe", "httpGet", "path"); path != "/healthz" {
				t.Errorf("%s container %s: readiness %q follows Kafka; want /healthz", name, str(c, "name"), path)
			}
		}
	}
}

func maps(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestAPIAndWebappRunOnCloudRunOnly(t *testing.T) {
	settings := func(s *Settings) {
		s.Project, s.Region = "contest-123", "europe-west1"
		s.CloudRun = CloudRun{Network: "contest-vpc", Subnet: "run-egress", EgressRange: "10.20.30.0/28"}
	}
	for _, o := range render(t, "MANIFEST_SRCS", settings) {
		if app := str(o, "spec", "template", "metadata", "labels", "app"); app == "api" || app == "web" {
			t.Errorf("%s runs the %s in the cluster too", o.id(), app)
		}
	}
	services := render(t, "CLOUDRUN_SRCS", settings)
	for _, name := range []string{"tally-api", "tally-web"} {
		svc := find(t, services, "Service", name)
		if str(svc, "metadata", "namespace") != "contest-123" || str(svc, "metadata", "labels", "cloud.googleapis.com/location") != "europe-west1" {
			t.Errorf("%s: project %q, region %q", name, str(svc, "metadata", "namespace"), str(svc, "metadata", "labels", "cloud.googleapis.com/location"))
		}
		account := strings.TrimPrefix(name, "tally-")
		if got := str(svc, "spec", "template", "spec", "serviceAccountName"); got != "tally-"+account+"@contest-123.iam.gserviceaccount.com" {
			t.Errorf("%s runs as %q", name, got)
		}
		if timeout, _ := at(svc, "spec", "template", "spec", "timeoutSeconds").(int); timeout != 3600 {
			t.Errorf("%s: request timeout %v s cuts /api/stream; want Cloud Run's longest, 3600", name, timeout)
		}
	}
	api := find(t, services, "Service", "tally-api")
	egress := str(api, "spec", "template", "metadata", "annotations", "run.googleapis.com/network-interfaces")
	if egress != `[{"network":"contest-vpc","subnetwork":"run-egress"}]` ||
		str(api, "spec", "template", "metadata", "annotations", "run.googleapis.com/vpc-access-egress") != "private-ranges-only" {
		t.Errorf("the API's Direct VPC egress: %q", egress)
	}
	web := find(t, services, "Service", "tally-web")
	if envValue(container(t, web, "web"), "API_ID_TOKEN") != "true" {
		t.Error("the webapp does not call the private API with an identity token")
	}

	// Redis and MongoDB reach Cloud Run through internal load balancers open to its range only.
	wantInternal := map[string]bool{"redis-internal": true, "mongodb-internal": true}
	for _, o := range render(t, "MANIFEST_SRCS", settings) {
		if str(o, "kind") != "Service" || str(o, "spec", "type") != "LoadBalancer" {
			continue
		}
		ranges := list(o, "spec", "loadBalancerSourceRanges")
		if str(o, "metadata", "annotations", "networking.gke.io/load-balancer-type") != "Internal" ||
			len(ranges) != 1 || ranges[0] != "10.20.30.0/28" || str(o, "spec", "externalTrafficPolicy") != "Local" {
			t.Errorf("%s: a load balancer that is not internal, open to more than Cloud Run's range, or hides the client's address", o.id())
		}
		delete(wantInternal, str(o, "metadata", "name"))
	}
	if len(wantInternal) > 0 {
		t.Errorf("no internal load balancer for %v", wantInternal)
	}
}

// The Redis users' keys are exactly those the key layout gives each program, read here from
// proto/redis_keys.json independently of the render's own derivation; their commands read or
// write as the program does.
func TestRedisUsersFollowTheKeyLayout(t *testing.T) {
	var layout struct {
		Keys []struct {
			Template, Writer string
			Readers          []string
		}
	}
	if err := json.Unmarshal([]byte(readFile(t, runfile.Path(t, "REDIS_KEYS"))), &layout); err != nil {
		t.Fatal(err)
	}
	redis := find(t, render(t, "MANIFEST_SRCS", nil), "StatefulSet", "redis")
	var args []string
	for _, a := range list(container(t, redis, "redis"), "args") {
		args = append(args, a.(string))
	}
	users := map[string][]string{} // user -> its rules
	for i := 0; i < len(args); i++ {
		if args[i] == "--user" {
			j := i + 2
			for j < len(args) && !strings.HasPrefix(args[j], "--") {
				j++
			}
			users[args[i+1]] = args[i+2 : j]
		}
	}
	holes := regexp.MustCompile(`\{[a-z_]+\}`)
	for _, user := range []string{"consumer", "api", "grafana"} {
		rules, ok := users[user]
		if !ok {
			t.Errorf("no Redis user %s", user)
			continue
		}
		var wantKeys, gotKeys []string
		for _, k := range layout.Keys {
			if k.Writer == user || slices.Contains(k.Readers, user) {
				wantKeys = append(wantKeys, "~"+holes.ReplaceAllString(k.Template, "*"))
			}
		}
		for _, r := range rules {
			if strings.HasPrefix(r, "~") || strings.HasPrefix(r, "%") || r == "allkeys" {
				gotKeys = append(gotKeys, r)
			}
		}
		slices.Sort(wantKeys)
		slices.Sort(gotKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Errorf("Redis user %s may touch %v; proto/redis_keys.json gives it %v", user, gotKeys, wantKeys)
		}
		if rules[0] != "on" || !strings.HasPrefix(rules[1], ">$(") || !slices.Contains(rules, "resetkeys") || !slices.Contains(rules, "-@all") {
			t.Errorf("Redis user %s: %v does not start from nothing with a password", user, rules)
		}
		writes := slices.Contains(rules, "+@write")
		if writes != (user == "consumer") || slices.Contains(rules, "+@all") || slices.Contains(rules, "+@dangerous") {
			t.Errorf("Redis user %s: %v", user, rules)
		}
	}
}

func TestMongoDBIsAReplicaSetWithAUserPerService(t *testing.T) {
	for _, members := range []int{1, 3} {
		objs := render(t, "MANIFEST_SRCS", func(s *Settings) { s.MongoDB.Members = members })
		sts := find(t, objs, "StatefulSet", "mongodb")
		if at(sts, "spec", "replicas") != members || !slices.Contains(list(container(t, sts, "mongodb"), "args"), any("rs0")) {
			t.Errorf("%d members: StatefulSet replicas %v, args %v", members, at(sts, "spec", "replicas"), list(container(t, sts, "mongodb"), "args"))
		}
		if svc := find(t, objs, "Service", "mongodb"); str(svc, "spec", "clusterIP") != "None" {
			t.Error("the members' Service is not headless: the replica set cannot name them")
		}
		consumer := container(t, find(t, objs, "Deployment", "consumer"), "consumer")
		uri := envValue(consumer, "MONGO_URL")
		if !strings.HasPrefix(uri, "mongodb://consumer:$(MONGO_PASSWORD)@") || strings.Count(uri, "27017") != members ||
			!strings.Contains(uri, "replicaSet=rs0") || !strings.Contains(uri, "w=majority") {
			t.Errorf("%d members: the consumer connects with %q", members, uri)
		}
		// The setup is our program (go/cmd/mongodb-setup, whose commands go/internal/mongosetup's
		// test checks), told every member, the set, and each user's password from its own Secret.
		setup := container(t, find(t, objs, "Job", "mongodb-setup"), "setup")
		if image := str(setup, "image"); imageName(image) != "mongodb-setup" {
			t.Errorf("the setup Job runs %s, want our mongodb-setup", image)
		}
		if n := len(strings.Split(envValue(setup, "MEMBERS"), ",")); n != members {
			t.Errorf("the setup Job initiates %d members, want %d", n, members)
		}
		if envValue(setup, "REPLICA_SET") != "rs0" || envValue(setup, "USERS") != "true" {
			t.Errorf("the setup Job: REPLICA_SET %q, USERS %q; want rs0 and true", envValue(setup, "REPLICA_SET"), envValue(setup, "USERS"))
		}
		for variable, secret := range map[string]string{"ROOT_PASSWORD": "mongodb-auth", "CONSUMER_PASSWORD": "mongodb-consumer", "API_PASSWORD": "mongodb-api"} {
			if got := secretOf(setup, variable); got != secret {
				t.Errorf("the setup Job's %s comes from Secret %q, want %s", variable, got, secret)
			}
		}
		if len(list(setup, "command")) != 0 || len(list(setup, "args")) != 0 {
			t.Errorf("the setup Job passes a command line %v %v: its settings are its environment", list(setup, "command"), list(setup, "args"))
		}
	}
	// With the tests' MongoDB-wire server (mongodb.server ferretdb): no replica set, no users,
	// no password to log in with; only the wait.
	ferret := container(t, find(t, render(t, "MANIFEST_SRCS", func(s *Settings) { s.MongoDB.Members, s.MongoDB.Server = 1, "ferretdb" }),
		"Job", "mongodb-setup"), "setup")
	if envValue(ferret, "REPLICA_SET") != "" || envValue(ferret, "USERS") != "false" || secretOf(ferret, "ROOT_PASSWORD") != "" {
		t.Errorf("with ferretdb the setup Job gets %v", list(ferret, "env"))
	}
	// Least privilege: no workload of the cluster holds the administrators' passwords but the
	// servers themselves and the setup Job.
	for _, o := range render(t, "MANIFEST_SRCS", nil) {
		var found []map[string]any
		containers(map[string]any(o), &found)
		text, _ := yaml.Marshal(found)
		name := str(o, "metadata", "name")
		if bytes.Contains(text, []byte("name: mongodb-auth")) && name != "mongodb" && name != "mongodb-setup" ||
			bytes.Contains(text, []byte("name: redis-auth")) && name != "redis" {
			t.Errorf("%s reads an administrator's Secret", o.id())
		}
	}
}

// secretOf is the Secret a container's variable is read from, "" if none.
func secretOf(c map[string]any, name string) string {
	for _, e := range list(c, "env") {
		if str(e, "name") == name {
			return str(e, "valueFrom", "secretKeyRef", "name")
		}
	}
	return ""
}

func TestKafkaReplicationFollowsTheBrokers(t *testing.T) {
	for _, tc := range []struct{ brokers, replicas, minInsync int }{{1, 1, 1}, {3, 3, 2}} {
		objs := render(t, "MANIFEST_SRCS", func(s *Settings) { s.Kafka.Brokers = tc.brokers })
		if got := at(find(t, objs, "KafkaNodePool", "dual-role"), "spec", "replicas"); got != tc.brokers {
			t.Errorf("%d brokers: node pool replicas %v", tc.brokers, got)
		}
		config := at(find(t, objs, "Kafka", "tally"), "spec", "kafka", "config")
		for key, want := range map[string]int{
			"default.replication.factor": tc.replicas, "offsets.topic.replication.factor": tc.replicas,
			"transaction.state.log.replication.factor": tc.replicas,
			"min.insync.replicas":                      tc.minInsync, "transaction.state.log.min.isr": tc.minInsync,
		} {
			if got := at(config, key); got != want {
				t.Errorf("%d brokers: %s = %v, want %d", tc.brokers, key, got, want)
			}
		}
		for _, topic := range []string{"votes", "votes-dlq"} {
			if got := at(find(t, objs, "KafkaTopic", topic), "spec", "replicas"); got != tc.replicas {
				t.Errorf("%d brokers: topic %s has %v replicas", tc.brokers, topic, got)
			}
		}
	}
}

func TestSettingsThatCannotWorkAreRefused(t *testing.T) {
	good, err := LoadSettings(runfile.Path(t, "SETTINGS"))
	if err != nil {
		t.Fatalf("the repository's settings: %v", err)
	}
	for name, edit := range map[string]func(*Settings){
		"2 brokers":                 func(s *Settings) { s.Kafka.Brokers = 2 },
		"2 members":                 func(s *Settings) { s.MongoDB.Members = 2 },
		"a public range":            func(s *Settings) { s.CloudRun.EgressRange = "8.8.8.0/24" },
		"not a range":               func(s *Settings) { s.CloudRun.EgressRange = "10.8.0.1" },
		"host bits set":             func(s *Settings) { s.CloudRun.EgressRange = "10.8.0.1/26" },
		"a domain with caps":        func(s *Settings) { s.Domain = "Tally.Example" },
		"no project":                func(s *Settings) { s.Project = "" },
		"no MongoDB server":         func(s *Settings) { s.MongoDB.Server = "" },
		"a replica set of ferretdb": func(s *Settings) { s.MongoDB.Server = "ferretdb" },
	} {
		s := good
		edit(&s)
		if err := s.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	typo := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(typo, []byte(readFile(t, runfile.Path(t, "SETTINGS"))+"kafka_brokers: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSettings(typo); err == nil || !strings.Contains(err.Error(), "kafka_brokers") {
		t.Errorf("an unknown setting: %v, want an error naming it", err)
	}
}
