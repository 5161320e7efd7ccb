// Command strimzi prepares the Strimzi cluster operator's install for //k8s:apply: it takes the
// release's install files (downloaded from the pinned release tag, or read from a folder),
// refuses any whose sha256 is not the pinned one, and writes them as one stream with the
// operator installed in its own namespace and watching Tally's Kafka namespace, as Strimzi's
// documentation describes for a single watched namespace:
//
//   - every namespaced object goes into the operator's namespace, and every binding's subjects
//     name that namespace (the release says "myproject");
//
//   - the operator's STRIMZI_NAMESPACE is the watched namespace instead of its own;
//
//   - the RoleBindings that let it manage Kafka clusters (roles -namespaced, -watched and the
//     entity operator's) are repeated in the watched namespace.
//
// With --images (the render's refs, when the settings say images.strimzi: ours), the operator
// runs the Strimzi images built here (//k8s/images/strimzi) instead of the release's: its own
// container and every image variable of its Deployment that names Strimzi's operator or Kafka
// image. That build supports one Kafka version (KafkaVersion), so the version maps name only it,
// and an image of the Deployment left named by tag alone stops the install. Without --images,
// references listed in --pins (k8s/image-pins.txt) get their digests. Either way the variables
// for images Tally never runs (unusedImageVars) name no image at all.
//
//	strimzi --pin k8s/strimzi-1.2.0.sha256 [--from DIR] [--images REFS] [--pins PINS] --out operator.yaml
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tally-voting/tally/k8s/imagepins"
)

const (
	// OperatorNamespace is where the operator runs; WatchedNamespace holds Tally's Kafka.
	OperatorNamespace = "strimzi"
	WatchedNamespace  = "tally-kafka"
	// ReleaseURL is where a release's install files are, by version and file name.
	ReleaseURL = "https://raw.githubusercontent.com/strimzi/strimzi-kafka-operator/%s/packaging/install/cluster-operator/%s"
)

// KafkaVersion is the one Kafka version Tally's build of the operator supports: the version of
// its Kafka image (tools/strimzi/broker/pom.xml; tools/strimzi/strimzi_source.py only-kafka).
const KafkaVersion = "4.3.1"

// Images are the Strimzi images built here, as pinned references.
type Images struct{ Operator, Kafka string }

// ReadImages takes the Strimzi images' lines ("strimzi-operator ref", "strimzi-kafka ref") from
// a render's refs file; ok is false when the file has neither (the settings chose upstream).
func ReadImages(refsFile string) (Images, bool, error) {
	data, err := os.ReadFile(refsFile)
	if err != nil {
		return Images{}, false, fmt.Errorf("images: %w", err)
	}
	var im Images
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "strimzi-operator":
			im.Operator = f[1]
		case "strimzi-kafka":
			im.Kafka = f[1]
		}
	}
	if im.Operator == "" && im.Kafka == "" {
		return Images{}, false, nil
	}
	if im.Operator == "" || im.Kafka == "" || !strings.Contains(im.Operator, "@sha256:") || !strings.Contains(im.Kafka, "@sha256:") {
		return Images{}, false, fmt.Errorf("images %s: want both strimzi-operator and strimzi-kafka pinned by digest, got %+v", refsFile, im)
	}
	return im, true, nil
}

// imageVars are the operator's image variables that name its own image or its Kafka image; the
// others are unusedImageVars.
var imageVars = map[string]func(Images) string{
	"STRIMZI_DEFAULT_TOPIC_OPERATOR_IMAGE": func(im Images) string { return im.Operator },
	"STRIMZI_DEFAULT_USER_OPERATOR_IMAGE":  func(im Images) string { return im.Operator },
	"STRIMZI_DEFAULT_KAFKA_INIT_IMAGE":     func(im Images) string { return im.Operator },
	// Upstream's Kafka image also carries the exporter and Cruise Control; ours has neither
	// (k8s/images/strimzi/README.md), so these work only while they stay disabled.
	"STRIMZI_DEFAULT_KAFKA_EXPORTER_IMAGE": func(im Images) string { return im.Kafka },
	"STRIMZI_DEFAULT_CRUISE_CONTROL_IMAGE": func(im Images) string { return im.Kafka },
	"STRIMZI_KAFKA_IMAGES":                 func(im Images) string { return KafkaVersion + "=" + im.Kafka + "\n" },
	"STRIMZI_KAFKA_CONNECT_IMAGES":         func(im Images) string { return KafkaVersion + "=" + im.Kafka + "\n" },
	"STRIMZI_KAFKA_MIRROR_MAKER_2_IMAGES":  func(im Images) string { return KafkaVersion + "=" + im.Kafka + "\n" },
}

// unusedImageVars are the operator's image variables for pods Tally never makes: a KafkaBridge's,
// and a KafkaConnect build's (Kaniko or Buildah, and the Maven builder its Dockerfile starts
// FROM). Strimzi 1.2.0 reads each from its environment only when it makes such a pod, uses the
// value unchecked, and falls back to a ":latest" tag when it is unset (KafkaBridgeCluster.fromCrd,
// KafkaConnectBuild, KafkaConnectDockerfile), so leaving them out would name a floating tag. No
// public source gives a digest for the release's tags (k8s/image-pins.txt), and none is built
// here, so each names NotProvided(variable) instead.
var unusedImageVars = []string{
	"STRIMZI_DEFAULT_KAFKA_BRIDGE_IMAGE",
	"STRIMZI_DEFAULT_KANIKO_EXECUTOR_IMAGE",
	"STRIMZI_DEFAULT_BUILDAH_IMAGE",
	"STRIMZI_DEFAULT_MAVEN_BUILDER",
}

// NotProvided is what an unused image variable names: not an image reference (a repository name
// must be lower case), so a pod given it fails to start with InvalidImageName and the kubelet's
// message names the variable; nothing is pulled, from any registry.
func NotProvided(variable string) string { return "tally-provides-no-image-for/" + variable }

// isImageVar says whether an operator variable names images: one reference, or for the _IMAGES
// maps "<Kafka version>=<reference>" lines.
func isImageVar(name string) bool {
	return strings.HasSuffix(name, "_IMAGE") || strings.HasSuffix(name, "_IMAGES") || name == "STRIMZI_DEFAULT_MAVEN_BUILDER"
}

// allContainers are the Deployment's containers and init containers.
func allContainers(deployment *yaml.Node) []*yaml.Node {
	spec := field(field(field(deployment, "spec"), "template"), "spec")
	return append(seq(field(spec, "initContainers")), seq(field(spec, "containers"))...)
}

// eachImage calls f with every image reference of the Deployment, each container's image and
// each reference of its image variables, and puts what f returns in its place.
func eachImage(deployment *yaml.Node, f func(ref string) string) {
	for _, c := range allContainers(deployment) {
		if image := field(c, "image"); image != nil {
			image.Value = f(image.Value)
		}
		for _, env := range seq(field(c, "env")) {
			name := scalar(env, "name")
			v := field(env, "value")
			if v == nil || !isImageVar(name) {
				continue
			}
			var lines []string
			for _, line := range strings.Split(strings.TrimRight(v.Value, "\n"), "\n") {
				if version, ref, ok := strings.Cut(line, "="); ok && strings.HasSuffix(name, "_IMAGES") {
					lines = append(lines, version+"="+f(strings.TrimSpace(ref)))
				} else {
					lines = append(lines, f(strings.TrimSpace(line)))
				}
			}
			v.Value = strings.Join(lines, "\n")
			if strings.HasSuffix(name, "_IMAGES") {
				v.Value += "\n"
			}
		}
	}
}

// TagOnly lists the Deployment's image references that name no digest, other than NotProvided's.
func TagOnly(deployment *yaml.Node) []string {
	var refs []string
	eachImage(deployment, func(ref string) string {
		if !imagepins.ByDigest(ref) && !strings.HasPrefix(ref, NotProvided("")) {
			refs = append(refs, ref)
		}
		return ref
	})
	slices.Sort(refs)
	return slices.Compact(refs)
}

// leaveOutUnused points the unused image variables at NotProvided.
func leaveOutUnused(deployment *yaml.Node) error {
	seen := map[string]bool{}
	for _, c := range allContainers(deployment) {
		for _, env := range seq(field(c, "env")) {
			name := scalar(env, "name")
			if !slices.Contains(unusedImageVars, name) {
				continue
			}
			v := field(env, "value")
			if v == nil {
				return fmt.Errorf("%s has no value", name)
			}
			v.Value, v.Style = NotProvided(name), 0
			seen[name] = true
		}
	}
	for _, name := range unusedImageVars {
		if !seen[name] {
			return fmt.Errorf("the operator's Deployment does not set %s (a new release needs a look)", name)
		}
	}
	return nil
}

// UseImages points the operator's Deployment at the images built here.
func UseImages(deployment *yaml.Node, im Images) error {
	spec := field(field(field(deployment, "spec"), "template"), "spec")
	containers := seq(field(spec, "containers"))
	if len(containers) != 1 {
		return fmt.Errorf("want the operator's one container, got %d", len(containers))
	}
	c := containers[0]
	image := field(c, "image")
	if image == nil {
		return errors.New("the operator's container names no image")
	}
	image.Value = im.Operator
	seen := map[string]bool{}
	for _, env := range seq(field(c, "env")) {
		name := scalar(env, "name")
		value, ok := imageVars[name]
		if !ok {
			continue
		}
		v := field(env, "value")
		if v == nil {
			return fmt.Errorf("%s has no value", name)
		}
		v.Value, v.Style = value(im), 0
		if strings.Contains(v.Value, "\n") {
			v.Style = yaml.LiteralStyle
		}
		seen[name] = true
	}
	for name := range imageVars {
		if !seen[name] {
			return fmt.Errorf("the operator's Deployment does not set %s (a new release needs a look)", name)
		}
	}
	return nil
}

// PinImages gives every image reference of the operator's Deployment that pins lists its digest.
func PinImages(deployment *yaml.Node, pins map[string]string) {
	eachImage(deployment, func(ref string) string {
		if d, ok := pins[ref]; ok && !strings.Contains(ref, "@") {
			return ref + "@" + d
		}
		return ref
	})
}

// watchedRoles are the ClusterRoles the operator needs bound in each namespace it watches.
var watchedRoles = []string{"strimzi-cluster-operator-namespaced", "strimzi-cluster-operator-watched", "strimzi-entity-operator"}

// namespaced are the kinds of the release's namespaced objects; any other kind must be
// cluster-scoped, and a kind that is neither stops the install (a new release needs a look).
var (
	namespaced = []string{"ServiceAccount", "RoleBinding", "ConfigMap", "Deployment"}
	cluster    = []string{"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
)

// Pin is a release's version and its install files' sums, from a file named
// strimzi-<version>.sha256 holding "<sha256>  <file>" lines.
type Pin struct {
	Version string
	Files   []string
	Sums    map[string]string
}

var pinName = regexp.MustCompile(`^strimzi-([0-9]+\.[0-9]+\.[0-9]+)\.sha256$`)
var pinLine = regexp.MustCompile(`^([0-9a-f]{64})  ([0-9A-Za-z._-]+\.yaml)$`)

// ReadPin reads a pin file.
func ReadPin(path string) (Pin, error) {
	m := pinName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return Pin{}, fmt.Errorf("pin %s: want a file named strimzi-<version>.sha256", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return Pin{}, fmt.Errorf("pin: %w", err)
	}
	defer f.Close()
	pin := Pin{Version: m[1], Sums: map[string]string{}}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := pinLine.FindStringSubmatch(line)
		if m == nil {
			return Pin{}, fmt.Errorf("pin %s:%d: want \"<sha256>  <file>.yaml\", got %q", path, n, line)
		}
		pin.Files = append(pin.Files, m[2])
		pin.Sums[m[2]] = m[1]
	}
	if err := s.Err(); err != nil {
		return Pin{}, fmt.Errorf("pin %s: %w", path, err)
	}
	if len(pin.Files) == 0 {
		return Pin{}, fmt.Errorf("pin %s: no files", path)
	}
	return pin, nil
}

// Fetch returns every pinned file's content, read from dir or, when dir is empty, downloaded
// from releaseURL (a format taking the version and the file's name); a file whose sum differs
// from the pin, or a YAML file in dir the pin does not list, is an error.
func (p Pin) Fetch(ctx context.Context, dir, releaseURL string) (map[string][]byte, error) {
	if dir != "" {
		present, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range present {
			if _, ok := p.Sums[filepath.Base(f)]; !ok {
				return nil, fmt.Errorf("%s is not among the pinned files of Strimzi %s", f, p.Version)
			}
		}
	}
	files := map[string][]byte{}
	var errs []error
	for _, name := range p.Files {
		var data []byte
		var err error
		if dir != "" {
			data, err = os.ReadFile(filepath.Join(dir, name))
		} else {
			data, err = download(ctx, fmt.Sprintf(releaseURL, p.Version, name))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != p.Sums[name] {
			errs = append(errs, fmt.Errorf("%s has sha256 %s, the pin for Strimzi %s says %s", name, got, p.Version, p.Sums[name]))
			continue
		}
		files[name] = data
	}
	return files, errors.Join(errs...)
}

func download(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// Install rewrites the release's files (in the pin's order) into one stream for the operator's
// namespace, watching WatchedNamespace, running ours (when given: every image by digest, or an
// error) or the release's images with the digests of pins; unpinned lists the release's image
// references left named by tag alone.
func Install(p Pin, files map[string][]byte, ours *Images, pins map[string]string) (stream []byte, unpinned []string, err error) {
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	for _, name := range p.Files {
		var doc yaml.Node
		if err := yaml.Unmarshal(files[name], &doc); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
			return nil, nil, fmt.Errorf("%s: want one YAML object", name)
		}
		obj := doc.Content[0]
		kind := scalar(obj, "kind")
		switch {
		case slices.Contains(namespaced, kind):
			setNamespace(obj, OperatorNamespace)
		case slices.Contains(cluster, kind):
		default:
			return nil, nil, fmt.Errorf("%s: kind %q is neither a known namespaced nor a cluster-scoped kind of the release", name, kind)
		}
		for _, s := range seq(field(obj, "subjects")) {
			if ns := field(s, "namespace"); ns != nil {
				ns.Value = OperatorNamespace
			}
		}
		if kind == "Deployment" {
			if err := watch(obj, WatchedNamespace); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			if err := leaveOutUnused(obj); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			if ours != nil {
				if err := UseImages(obj, *ours); err != nil {
					return nil, nil, fmt.Errorf("%s: %w", name, err)
				}
				if refs := TagOnly(obj); len(refs) > 0 {
					return nil, nil, fmt.Errorf("%s: named by tag alone with the images built here (a new image variable needs a look): %s", name, strings.Join(refs, ", "))
				}
			} else {
				PinImages(obj, pins)
				unpinned = TagOnly(obj)
			}
		}
		if err := enc.Encode(obj); err != nil {
			return nil, nil, err
		}
		if kind == "RoleBinding" && slices.Contains(watchedRoles, scalar(field(obj, "roleRef"), "name")) {
			setNamespace(obj, WatchedNamespace)
			if err := enc.Encode(obj); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := enc.Close(); err != nil {
		return nil, nil, err
	}
	return out.Bytes(), unpinned, nil
}

// watch points the operator's STRIMZI_NAMESPACE at ns.
func watch(deployment *yaml.Node, ns string) error {
	spec := field(field(field(deployment, "spec"), "template"), "spec")
	for _, c := range seq(field(spec, "containers")) {
		for _, env := range seq(field(c, "env")) {
			if scalar(env, "name") != "STRIMZI_NAMESPACE" {
				continue
			}
			env.Content = []*yaml.Node{str("name"), str("STRIMZI_NAMESPACE"), str("value"), str(ns)}
			return nil
		}
	}
	return errors.New("no container sets STRIMZI_NAMESPACE")
}

func setNamespace(obj *yaml.Node, ns string) {
	meta := field(obj, "metadata")
	if n := field(meta, "namespace"); n != nil {
		n.Value = ns
		return
	}
	meta.Content = append(meta.Content, str("namespace"), str(ns))
}

// field is a mapping node's value for key, or nil.
func field(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node, key string) string {
	if v := field(n, key); v != nil {
		return v.Value
	}
	return ""
}

func seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func str(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

func main() {
	pinFile := flag.String("pin", "", "the pin file, strimzi-<version>.sha256")
	from := flag.String("from", "", "a folder holding the release's install files (default: download them from the release)")
	release := flag.String("release-url", ReleaseURL, "where the release's files are: a format of the version and the file name")
	out := flag.String("out", "", "where to write the operator's install")
	images := flag.String("images", "", "a render's refs: the operator runs the Strimzi images built here when they are listed")
	pins := flag.String("pins", "", "third-party images' digests (k8s/image-pins.txt), for the release's images")
	unpinned := flag.String("unpinned", "", "where to write the release's image references the pins lack, one a line")
	flag.Parse()
	if err := run(context.Background(), *pinFile, *from, *release, *out, *images, *pins, *unpinned); err != nil {
		fmt.Fprintf(os.Stderr, "strimzi: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, pinFile, from, releaseURL, out, imagesFile, pinsFile, unpinnedFile string) error {
	if pinFile == "" || out == "" {
		return errors.New("--pin and --out are required")
	}
	pin, err := ReadPin(pinFile)
	if err != nil {
		return err
	}
	files, err := pin.Fetch(ctx, from, releaseURL)
	if err != nil {
		return fmt.Errorf("Strimzi %s's install files: %w", pin.Version, err)
	}
	var ours *Images
	if imagesFile != "" {
		im, ok, err := ReadImages(imagesFile)
		if err != nil {
			return err
		}
		if ok {
			ours = &im
		}
	}
	pins := map[string]string{}
	if pinsFile != "" && ours == nil {
		if pins, err = imagepins.Read(pinsFile); err != nil {
			return err
		}
	}
	stream, unpinned, err := Install(pin, files, ours, pins)
	if err != nil {
		return err
	}
	if unpinnedFile != "" {
		text := strings.Join(unpinned, "\n")
		if text != "" {
			text += "\n"
		}
		if err := os.WriteFile(unpinnedFile, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(out, stream, 0o644)
}
