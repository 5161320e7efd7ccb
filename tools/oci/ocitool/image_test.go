package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func testLayer(t *testing.T, dir, name, content string) string {
	t.Helper()
	src := filepath.Join(dir, name+".src")
	if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeLayer(layerSpec{Entries: []layerEntry{{Dest: "/" + name, Src: src}}}, f); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildImageIsReproducibleAndStacksOnItsBase(t *testing.T) {
	dir := t.TempDir()
	base := imageSpec{
		Layers: []string{testLayer(t, dir, "base", "base")},
		OS:     "linux", Architecture: "amd64",
		Env: map[string]string{"PATH": "/usr/bin", "A": "1"},
		Cmd: []string{"/bin/sh"},
	}
	baseImg, _, err := buildImage(base)
	if err != nil {
		t.Fatal(err)
	}
	baseDir := filepath.Join(dir, "base_layout")
	baseDigest, err := writeLayout(baseDir, baseImg)
	if err != nil {
		t.Fatal(err)
	}
	spec := imageSpec{
		Base:   baseDir,
		Layers: []string{testLayer(t, dir, "app", "app")},
		OS:     "linux", Architecture: "amd64",
		Entrypoint:  []string{"/app"},
		Env:         map[string]string{"A": "2", "B": "3"},
		User:        "65532",
		Annotations: map[string]string{"run.oci.handler": "wasm"},
	}
	var digests []string
	for i := 0; i < 2; i++ {
		img, done, err := buildImage(spec)
		if err != nil {
			t.Fatal(err)
		}
		d, err := writeLayout(filepath.Join(dir, "layout"), img)
		done()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("same spec, two digests: %v", digests)
	}
	img, done, err := readLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if d, _ := img.Digest(); d.String() != digests[0] || d == baseDigest {
		t.Fatalf("layout holds %s, built %s (base %s)", d, digests[0], baseDigest)
	}
	mt, _ := img.MediaType()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 2 {
		t.Fatalf("manifest %s, config %s, %d layers", mt, m.Config.MediaType, len(m.Layers))
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
	if m.Annotations["run.oci.handler"] != "wasm" {
		t.Errorf("annotations %v", m.Annotations)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Time.Equal(epoch) || cf.Config.User != "65532" || cf.Config.Cmd != nil ||
		len(cf.Config.Entrypoint) != 1 || len(cf.History) != 2 {
		t.Fatalf("config %+v", cf)
	}
	wantEnv := []string{"A=2", "PATH=/usr/bin", "B=3"}
	if len(cf.Config.Env) != len(wantEnv) {
		t.Fatalf("env %q, want %q", cf.Config.Env, wantEnv)
	}
	for i := range wantEnv {
		if cf.Config.Env[i] != wantEnv[i] {
			t.Fatalf("env %q, want %q", cf.Config.Env, wantEnv)
		}
	}
}
