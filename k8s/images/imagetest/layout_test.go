package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ociDescriptor, ociIndex, ociManifest and ociConfig are the parts of the OCI image spec these
// tests read; written out here so the check does not share code with ocitool, which it checks.
type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type ociIndex struct {
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	MediaType   string            `json:"mediaType"`
	Config      ociDescriptor     `json:"config"`
	Layers      []ociDescriptor   `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

type ociConfig struct {
	Created string `json:"created"`
	Config  struct {
		User       string   `json:"User"`
		Env        []string `json:"Env"`
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
}

// runfile turns a $(rootpath) from the BUILD file into a path: rules_go runs a test in its
// package's directory, not at the runfiles root.
func runfile(p string) string {
	return filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"), p)
}

// layout is an OCI layout directory holding one image.
type layout struct {
	dir string
}

func (l layout) blob(t *testing.T, digest string) []byte {
	t.Helper()
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok {
		t.Fatalf("bad digest %q", digest)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs", algo, hex))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifest returns the digest and bytes of the layout's only manifest.
func (l layout) manifest(t *testing.T) (string, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ociIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s lists %d manifests, want 1", l.dir, len(idx.Manifests))
	}
	d := idx.Manifests[0].Digest
	return d, l.blob(t, d)
}

func (l layout) image(t *testing.T) (ociManifest, ociConfig) {
	t.Helper()
	_, raw := l.manifest(t)
	var m ociManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var c ociConfig
	if err := json.Unmarshal(l.blob(t, m.Config.Digest), &c); err != nil {
		t.Fatal(err)
	}
	return m, c
}

// unpack writes the image's file system into root, layer by layer. Tally's layers have no
// whiteouts, so each layer only adds.
func (l layout) unpack(t *testing.T, root string) {
	t.Helper()
	m, _ := l.image(t)
	for _, layer := range m.Layers {
		if err := untarGzip(l.blob(t, layer.Digest), root); err != nil {
			t.Fatalf("layer %s: %v", layer.Digest, err)
		}
	}
}

func untarGzip(b []byte, root string) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, root+string(filepath.Separator)) {
			return fmt.Errorf("%s leaves the root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, os.FileMode(h.Mode&0o7777)|0o700); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode&0o777))
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected type %q", h.Name, h.Typeflag)
		}
	}
}
