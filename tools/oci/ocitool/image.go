package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageSpec is what oci_image (defs.bzl) writes; the names follow rules_oci's attributes.
type imageSpec struct {
	// Base is an OCI layout directory holding one image; empty means no base (FROM scratch).
	Base         string            `json:"base"`
	Layers       []string          `json:"layers"` // uncompressed tars, in order
	OS           string            `json:"os"`
	Architecture string            `json:"architecture"`
	Variant      string            `json:"variant"`
	Entrypoint   []string          `json:"entrypoint"`
	Cmd          []string          `json:"cmd"`
	Env          map[string]string `json:"env"`
	User         string            `json:"user"`
	WorkingDir   string            `json:"workdir"`
	ExposedPorts []string          `json:"exposed_ports"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	// CreatedBy names the Bazel target in the image history.
	CreatedBy string `json:"created_by"`
}

func imageCommand(args []string) error {
	fl := flag.NewFlagSet("image", flag.ContinueOnError)
	specPath := fl.String("spec", "", "image spec (JSON)")
	out := fl.String("out", "", "OCI layout directory to write")
	digestOut := fl.String("digest", "", "file to write the manifest digest (sha256:<hex>) to")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *specPath == "" || *out == "" || *digestOut == "" {
		return errors.New("image: --spec, --out and --digest are required")
	}
	spec, err := readSpec[imageSpec](*specPath)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	img, done, err := buildImage(spec)
	if err != nil {
		return fmt.Errorf("image %s: %w", *out, err)
	}
	defer done()
	digest, err := writeLayout(*out, img)
	if err != nil {
		return fmt.Errorf("image %s: %w", *out, err)
	}
	return os.WriteFile(*digestOut, []byte(digest.String()), 0o644)
}

// buildImage stacks the spec's layers on its base and sets the config; every timestamp is the
// epoch, so the digest depends only on the inputs. Call done once the image has been written.
func buildImage(spec imageSpec) (img v1.Image, done func(), err error) {
	done = func() {}
	defer func() {
		if err != nil {
			done()
		}
	}()
	img = empty.Image
	if spec.Base != "" {
		base, cleanup, err := readLayout(spec.Base)
		if err != nil {
			return nil, nil, fmt.Errorf("base: %w", err)
		}
		done = cleanup
		img = base
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: epoch}
	adds := make([]mutate.Addendum, 0, len(spec.Layers))
	for _, file := range spec.Layers {
		layer, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %s: %w", file, err)
		}
		adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{Created: created, CreatedBy: spec.CreatedBy}})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	applyConfig(cf, spec)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if len(spec.Annotations) > 0 {
		annotated, ok := mutate.Annotations(img, spec.Annotations).(v1.Image)
		if !ok {
			return nil, nil, errors.New("annotations: not an image")
		}
		img = annotated
	}
	return img, done, nil
}

func applyConfig(cf *v1.ConfigFile, spec imageSpec) {
	cf.Created = v1.Time{Time: epoch}
	cf.OS, cf.Architecture, cf.Variant = spec.OS, spec.Architecture, spec.Variant
	c := &cf.Config
	if spec.Entrypoint != nil {
		c.Entrypoint = spec.Entrypoint
		// As in a Dockerfile, a new entrypoint drops the base's command.
		c.Cmd = nil
	}
	if spec.Cmd != nil {
		c.Cmd = spec.Cmd
	}
	if spec.User != "" {
		c.User = spec.User
	}
	if spec.WorkingDir != "" {
		c.WorkingDir = spec.WorkingDir
	}
	c.Env = mergeEnv(c.Env, spec.Env)
	for _, port := range spec.ExposedPorts {
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		c.ExposedPorts[port] = struct{}{}
	}
	for k, v := range spec.Labels {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = v
	}
}

// mergeEnv overrides base's NAME=VALUE entries with env's, keeping base's order and adding new
// names sorted.
func mergeEnv(base []string, env map[string]string) []string {
	out := make([]string, 0, len(base)+len(env))
	seen := map[string]bool{}
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if v, ok := env[name]; ok {
			kv = name + "=" + v
		}
		seen[name] = true
		out = append(out, kv)
	}
	names := make([]string, 0, len(env))
	for name := range env {
		if !seen[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, name+"="+env[name])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// writeLayout writes img as the only image of a fresh OCI layout at dir.
func writeLayout(dir string, img v1.Image) (v1.Hash, error) {
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// readLayout returns the single image of an OCI layout directory, and a function that removes
// the private copy it reads from. go-containerregistry refuses blobs that are symlinks, and
// Bazel's sandbox and runfiles present a tree artifact's files as symlinks, so the layout's files
// are first linked (or, across file systems, copied) into a temporary directory.
func readLayout(dir string) (v1.Image, func(), error) {
	tmp, err := os.MkdirTemp("", "oci-layout-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if err := linkTree(dir, tmp); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	idx, err := layout.ImageIndexFromPath(tmp)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		cleanup()
		return nil, nil, fmt.Errorf("%s holds %d manifests, want 1", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	return img, cleanup, nil
}

// linkTree recreates src's regular files under dst, following symlinks, as hard links where
// possible and copies otherwise.
func linkTree(src, dst string) error {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		if os.Link(real, target) == nil {
			return nil
		}
		return copyFile(real, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
