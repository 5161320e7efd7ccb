package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"

	"github.com/tally-voting/tally/go/test/runfile"
)

// release is the shared copy of Strimzi's install files: the real release, as tests get it.
func release(t *testing.T) (Pin, string) {
	t.Helper()
	pin, err := ReadPin(runfile.Path(t, "PIN"))
	if err != nil {
		t.Fatal(err)
	}
	dir := runfile.Path(t, "STRIMZI_INSTALL")
	if _, err := os.Stat(filepath.Join(dir, "MISSING")); err == nil {
		why, _ := os.ReadFile(filepath.Join(dir, "MISSING"))
		t.Fatalf("no Strimzi install files: %s", why)
	}
	return pin, dir
}

func TestTheSharedReleaseMatchesThePin(t *testing.T) {
	pin, dir := release(t)
	if pin.Version != "1.2.0" {
		t.Errorf("pinned version %s, want 1.2.0 (the CRDs k8s/manifests/kafka.yaml is written for)", pin.Version)
	}
	files, err := pin.Fetch(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(pin.Files) || len(files) < 20 {
		t.Errorf("%d files fetched of %d pinned", len(files), len(pin.Files))
	}
}

// copyRelease copies the release's YAML files into a folder the test may change.
func copyRelease(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML in %s: %v", dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestAChangedOrExtraFileIsRefused(t *testing.T) {
	pin, dir := release(t)
	changed := copyRelease(t, dir)
	deployment := filepath.Join(changed, "060-Deployment-strimzi-cluster-operator.yaml")
	data, _ := os.ReadFile(deployment)
	if err := os.WriteFile(deployment, bytes.Replace(data, []byte("quay.io/strimzi/operator:1.2.0"), []byte("quay.io/else/operator:1.2.0"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pin.Fetch(context.Background(), changed, ""); err == nil || !strings.Contains(err.Error(), "060-Deployment") {
		t.Errorf("a changed Deployment: %v, want an error naming it", err)
	}

	extra := copyRelease(t, dir)
	if err := os.WriteFile(filepath.Join(extra, "070-Extra.yaml"), []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pin.Fetch(context.Background(), extra, ""); err == nil || !strings.Contains(err.Error(), "070-Extra.yaml") {
		t.Errorf("an unpinned file: %v, want an error naming it", err)
	}
}

// The download path: the same files served over HTTP at <version>/<file>, as the release tag
// serves them, pass; a file served changed does not.
func TestDownloadedFilesAreCheckedToo(t *testing.T) {
	pin, dir := release(t)
	var tamper atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		version, name, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		data, err := os.ReadFile(filepath.Join(dir, filepath.Base(name)))
		if version != pin.Version || err != nil {
			http.NotFound(w, r)
			return
		}
		if tamper.Load() && strings.HasPrefix(name, "060-") {
			data = append(data, '\n')
		}
		w.Write(data)
	}))
	defer srv.Close()
	files, err := pin.Fetch(context.Background(), "", srv.URL+"/%s/%s")
	if err != nil || len(files) != len(pin.Files) {
		t.Fatalf("download: %d files, %v", len(files), err)
	}
	tamper.Store(true)
	if _, err := pin.Fetch(context.Background(), "", srv.URL+"/%s/%s"); err == nil || !strings.Contains(err.Error(), "060-Deployment") {
		t.Errorf("a changed download: %v, want an error naming it", err)
	}
	if _, err := pin.Fetch(context.Background(), "", srv.URL+"/0.0.1/%[2]s"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing file: %v, want the HTTP status", err)
	}
}

type object struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	Subjects []struct{ Kind, Name, Namespace string }
	RoleRef  struct{ Name string } `yaml:"roleRef"`
	Spec     struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Env []map[string]any
				}
			}
		}
	}
}

func TestInstallWatchesTallysKafkaNamespace(t *testing.T) {
	pin, dir := release(t)
	files, err := pin.Fetch(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	stream, unpinned, err := Install(pin, files, nil, map[string]string{"quay.io/strimzi/operator:1.2.0": testDigest})
	if err != nil {
		t.Fatal(err)
	}
	// The release names its images by tag: each one the pins lack is reported, the pinned one
	// gets its digest.
	if slices.Contains(unpinned, "quay.io/strimzi/operator:1.2.0") || !slices.Contains(unpinned, "quay.io/strimzi/kafka:1.2.0-kafka-4.3.1") {
		t.Errorf("unpinned = %v", unpinned)
	}
	// The images Tally never runs are not named at all, with the release's images too.
	for _, ref := range unpinned {
		if !strings.HasPrefix(ref, "quay.io/strimzi/operator:") && !strings.HasPrefix(ref, "quay.io/strimzi/kafka:") {
			t.Errorf("unpinned %s: only the release's operator and Kafka images may be named by tag", ref)
		}
	}
	for _, v := range unusedImageVars {
		if !bytes.Contains(stream, []byte("value: "+NotProvided(v)+"\n")) {
			t.Errorf("%s does not name %s", v, NotProvided(v))
		}
	}
	if !bytes.Contains(stream, []byte("image: quay.io/strimzi/operator:1.2.0@"+testDigest)) {
		t.Error("the pinned operator image has no digest in the install")
	}
	if bytes.Contains(stream, []byte("namespace: myproject")) {
		t.Error("the install still names the release's namespace myproject")
	}
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	watchedBindings := map[string]bool{}
	crds, deployments := 0, 0
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
			if o.Metadata.Namespace != "" {
				t.Errorf("cluster-scoped %s %s has namespace %s", o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			if o.Kind == "CustomResourceDefinition" {
				crds++
			}
		case "RoleBinding":
			if o.Metadata.Namespace == WatchedNamespace {
				watchedBindings[o.RoleRef.Name] = true
			} else if o.Metadata.Namespace != OperatorNamespace {
				t.Errorf("RoleBinding %s in %q", o.Metadata.Name, o.Metadata.Namespace)
			}
		default:
			if o.Metadata.Namespace != OperatorNamespace {
				t.Errorf("%s %s in %q, want %s", o.Kind, o.Metadata.Name, o.Metadata.Namespace, OperatorNamespace)
			}
		}
		for _, s := range o.Subjects {
			if s.Kind == "ServiceAccount" && s.Namespace != OperatorNamespace {
				t.Errorf("%s %s binds %s/%s, want the operator's namespace", o.Kind, o.Metadata.Name, s.Namespace, s.Name)
			}
		}
		if o.Kind == "Deployment" {
			deployments++
			var watched any
			for _, e := range o.Spec.Template.Spec.Containers[0].Env {
				if e["name"] == "STRIMZI_NAMESPACE" {
					watched = e["value"]
				}
			}
			if watched != WatchedNamespace {
				t.Errorf("STRIMZI_NAMESPACE = %v, want %s", watched, WatchedNamespace)
			}
		}
	}
	if crds < 10 || deployments != 1 {
		t.Errorf("%d CRDs and %d Deployments in the install", crds, deployments)
	}
	for _, role := range watchedRoles {
		if !watchedBindings[role] {
			t.Errorf("no RoleBinding of %s in %s", role, WatchedNamespace)
		}
	}
}

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// With the images built here, the operator and every image variable naming Strimzi's operator or
// Kafka image name them, and the version maps name only the one Kafka version they support.
func TestInstallRunsOurImages(t *testing.T) {
	pin, dir := release(t)
	files, err := pin.Fetch(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	refs := filepath.Join(t.TempDir(), "refs")
	operator, kafka := "r.test/p/strimzi-operator@"+testDigest, "r.test/p/strimzi-kafka@"+testDigest
	text := "consumer r.test/p/consumer@" + testDigest + "\nstrimzi-kafka " + kafka + "\nstrimzi-operator " + operator + "\n"
	if err := os.WriteFile(refs, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	im, ok, err := ReadImages(refs)
	if err != nil || !ok {
		t.Fatalf("ReadImages: %v, %v", ok, err)
	}
	stream, unpinned, err := Install(pin, files, &im, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(unpinned) != 0 {
		t.Errorf("unpinned = %v with our images", unpinned)
	}
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	for {
		var o struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Image string
							Env   []struct{ Name, Value string }
						}
					}
				}
			}
		}
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if o.Kind != "Deployment" {
			continue
		}
		c := o.Spec.Template.Spec.Containers[0]
		if c.Image != operator {
			t.Errorf("operator image %s, want %s", c.Image, operator)
		}
		want := map[string]string{
			"STRIMZI_DEFAULT_TOPIC_OPERATOR_IMAGE": operator,
			"STRIMZI_DEFAULT_USER_OPERATOR_IMAGE":  operator,
			"STRIMZI_DEFAULT_KAFKA_INIT_IMAGE":     operator,
			"STRIMZI_KAFKA_IMAGES":                 KafkaVersion + "=" + kafka + "\n",
			"STRIMZI_KAFKA_CONNECT_IMAGES":         KafkaVersion + "=" + kafka + "\n",
		}
		for _, v := range unusedImageVars {
			want[v] = NotProvided(v)
		}
		for _, e := range c.Env {
			if w, ok := want[e.Name]; ok && e.Value != w {
				t.Errorf("%s = %q, want %q", e.Name, e.Value, w)
			}
			delete(want, e.Name)
			if strings.Contains(e.Value, "quay.io/") {
				t.Errorf("%s still names the release's image: %q", e.Name, e.Value)
			}
		}
		if len(want) > 0 {
			t.Errorf("the Deployment lacks %v", want)
		}
		requireDigests(t, c.Image, c.Env)
	}
	if err := os.WriteFile(refs, []byte("strimzi-operator "+operator+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadImages(refs); err == nil {
		t.Error("refs with the operator but no Kafka image accepted")
	}
}

// requireDigests fails unless the operator's image and every image its variables name is pinned
// by digest, or is NotProvided's and no image reference at all, as a registry client parses
// them: no image is named by tag alone.
func requireDigests(t *testing.T, image string, env []struct{ Name, Value string }) {
	t.Helper()
	refs := []string{image}
	images := 0
	for _, e := range env {
		if !isImageVar(e.Name) {
			continue
		}
		images++
		for _, line := range strings.Split(strings.TrimSpace(e.Value), "\n") {
			if _, ref, ok := strings.Cut(line, "="); ok {
				line = ref
			}
			refs = append(refs, line)
		}
	}
	if images < 12 {
		t.Errorf("%d image variables, want Strimzi 1.2.0's 12", images)
	}
	for _, ref := range refs {
		parsed, err := name.ParseReference(ref, name.StrictValidation)
		if strings.HasPrefix(ref, NotProvided("")) {
			if err == nil {
				t.Errorf("%s is a valid image reference (%v): a pod given it would pull it", ref, parsed)
			}
			continue
		}
		if _, ok := parsed.(name.Digest); err != nil || !ok {
			t.Errorf("image %q is not pinned by digest (%v)", ref, err)
		}
	}
}

// A release whose Deployment names a new image by tag cannot be installed with the images built
// here: the install names the reference instead of leaving it to a pod.
func TestInstallRefusesAnImageNamedByTag(t *testing.T) {
	pin, dir := release(t)
	files, err := pin.Fetch(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	im := Images{Operator: "r.test/p/strimzi-operator@" + testDigest, Kafka: "r.test/p/strimzi-kafka@" + testDigest}
	const deployment = "060-Deployment-strimzi-cluster-operator.yaml"
	const at = "            - name: STRIMZI_OPERATOR_NAMESPACE\n"
	for _, added := range []string{
		"            - name: STRIMZI_DEFAULT_NEW_IMAGE\n              value: quay.io/strimzi/new:1.2.0\n",
		"            - name: STRIMZI_NEW_IMAGES\n              value: |\n                4.3.1=quay.io/strimzi/new:1.2.0\n",
	} {
		if !bytes.Contains(files[deployment], []byte(at)) {
			t.Fatalf("the release's Deployment has no line %q", at)
		}
		changed := map[string][]byte{}
		for k, v := range files {
			changed[k] = v
		}
		changed[deployment] = bytes.Replace(files[deployment], []byte(at), []byte(added+at), 1)
		if _, _, err := Install(pin, changed, &im, nil); err == nil || !strings.Contains(err.Error(), "quay.io/strimzi/new:1.2.0") {
			t.Errorf("a variable naming an image by tag: %v, want an error naming it", err)
		}
	}
}

// The Kafka version the operator's env names is the one the Kafka image and the build use.
func TestKafkaVersionIsTheBrokerImages(t *testing.T) {
	data, err := os.ReadFile(runfile.Path(t, "BROKER_POM"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "<kafka.version>"+KafkaVersion+"</kafka.version>") {
		t.Errorf("tools/strimzi/broker/pom.xml does not say kafka.version %s", KafkaVersion)
	}
}
