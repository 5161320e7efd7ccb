// Command render turns Tally's manifests into what is applied: each manifest is a Go template
// filled with the deployment's settings (k8s/settings.yaml) and the Redis users derived from
// the key layout; every image of ours, written in the manifests as its bare name
// (image: consumer), becomes <registry>/<repository>/<name>@sha256:… from the digest Bazel
// computed for the image; and files that Kubernetes needs as ConfigMaps (Grafana's provisioning
// and dashboards) are wrapped into ConfigMaps.
//
// A third-party image gets the digest the pins (k8s/image-pins.txt) give its reference; without
// one it keeps its version tag, unless the settings require digests.
//
// Rendering refuses anything it cannot pin: a bare name that is not one of our images, a
// third-party image without a version tag (or tagged latest), or without a pinned digest when
// the settings require one, a malformed digest, a setting that cannot work, a template value
// that does not exist.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/tally-voting/tally/k8s/imagepins"
)

// Config is what a render needs besides the manifests.
type Config struct {
	// Values fill the manifests' templates; their Registry and Repository prefix our images:
	// docker.io and tally give docker.io/tally/<name>.
	Values Values
	// Digests maps an image's bare name to its digest, sha256:<64 hex>.
	Digests map[string]string
	// ConfigMaps maps "namespace/name" to the files that become its keys (by base name).
	ConfigMaps map[string][]string
	// Pins maps a third-party image reference (name:tag) to its digest, sha256:<64 hex>.
	Pins map[string]string
	// Optional maps the bare names of the images built here that run only when the settings
	// choose them (Strimzi's, Redis, the MongoDB-wire server) to their digests: they are in the
	// refs (pushed by //k8s:apply) exactly when the settings run them.
	Optional map[string]string
}

var (
	imageLine = regexp.MustCompile(`^(\s*(?:-\s+)?image:\s*)("?)([^"\s]+)("?)\s*$`)
	digestRE  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	bareName  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Ref is the pinned reference of one of our images.
func (c Config) Ref(name string) (string, error) {
	digest, ok := c.Digests[name]
	if !ok {
		digest, ok = c.Optional[name]
	}
	if !ok {
		return "", fmt.Errorf("no image named %q among ours (%s)", name, strings.Join(c.names(), ", "))
	}
	if !digestRE.MatchString(digest) {
		return "", fmt.Errorf("image %s: digest %q is not sha256:<64 hex digits>", name, digest)
	}
	return c.Values.Registry + "/" + c.Values.Repository + "/" + name + "@" + digest, nil
}

func (c Config) names() []string {
	names := make([]string, 0, len(c.Digests))
	for n := range c.Digests {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// pushed are the images the refs list: ours, and the optional ones the settings run.
func (c Config) pushed() ([]string, error) {
	names := c.names()
	for n := range c.Optional {
		runs, err := c.Values.Runs(n)
		if err != nil {
			return nil, err
		}
		if runs {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Manifest fills in one manifest file's template, then pins its image references; file names
// the errors.
func (c Config) Manifest(file, text string) (string, error) {
	tmpl, err := template.New(filepath.Base(file)).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	var filled strings.Builder
	if err := tmpl.Execute(&filled, c.Values); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	lines := strings.Split(filled.String(), "\n")
	var errs []string
	for i, line := range lines {
		m := imageLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ref := m[3]
		pinned, err := c.pin(ref)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %v", file, i+1, err))
			continue
		}
		lines[i] = m[1] + pinned
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("unresolved image references:\n  %s", strings.Join(errs, "\n  "))
	}
	return strings.Join(lines, "\n"), nil
}

// pin resolves one image reference: ours by digest, third-party ones only with a version tag.
func (c Config) pin(ref string) (string, error) {
	if bareName.MatchString(ref) {
		return c.Ref(ref)
	}
	if imagepins.ByDigest(ref) {
		return ref, nil
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	if !ok || tag == "" || tag == "latest" {
		return "", fmt.Errorf("third-party image %q is not pinned to a version tag", ref)
	}
	if digest, ok := c.Pins[ref]; ok {
		return ref + "@" + digest, nil
	}
	if c.Values.Images.RequireDigests {
		return "", fmt.Errorf("third-party image %q has no digest in the pins (k8s/image-pins.txt): "+
			"add the line \"%s sha256:<digest>\" with the digest `crane digest %s` prints on a machine that "+
			"reaches its registry (docs/kubernetes.md)", ref, ref, ref)
	}
	return ref, nil
}

// ConfigMap renders one ConfigMap holding files under their base names.
func ConfigMap(namespace, name string, files []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\n", name, namespace)
	b.WriteString("  labels:\n    app.kubernetes.io/part-of: tally\ndata:\n")
	sorted := append([]string(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return filepath.Base(sorted[i]) < filepath.Base(sorted[j]) })
	for _, f := range sorted {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("configmap %s/%s: %w", namespace, name, err)
		}
		text := strings.TrimRight(string(data), "\n")
		if strings.ContainsAny(text, "\t\r") {
			return "", fmt.Errorf("configmap %s/%s: %s has tabs or carriage returns, which a YAML block cannot hold", namespace, name, f)
		}
		fmt.Fprintf(&b, "  %s: |\n", filepath.Base(f))
		for _, line := range strings.Split(text, "\n") {
			if line == "" {
				b.WriteString("\n")
				continue
			}
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String(), nil
}

// All renders the manifest files, then the ConfigMaps, as one multi-document YAML stream.
func (c Config) All(manifests []string) (string, error) {
	var docs []string
	var errs []string
	for _, f := range manifests {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		out, err := c.Manifest(f, string(data))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		// A file whose workload the settings leave out (Grafana's with images.grafana: none)
		// renders to nothing.
		if out = strings.TrimSpace(out); out != "" {
			docs = append(docs, out)
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	keys := make([]string, 0, len(c.ConfigMaps))
	for k := range c.ConfigMaps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		namespace, name, ok := strings.Cut(k, "/")
		if !ok {
			return "", fmt.Errorf("configmap %q: want namespace/name", k)
		}
		cm, err := ConfigMap(namespace, name, c.ConfigMaps[k])
		if err != nil {
			return "", err
		}
		docs = append(docs, strings.TrimSpace(cm))
	}
	return "# Rendered by //k8s:manifests (k8s/render); edit the sources in k8s/, not this file.\n" +
		strings.Join(docs, "\n---\n") + "\n", nil
}
