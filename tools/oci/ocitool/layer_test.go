package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// tarFile writes a tar holding the given entries, in the order given, with a non-zero owner
// and time, as Debian package data does.
func tarFile(t *testing.T, dir string, entries []tar.Header, data map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h.Uid, h.Gid, h.Uname, h.ModTime = 1000, 1000, "someone", epoch.AddDate(30, 0, 0)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data[h.Name]))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data[h.Name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "in.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTar(t *testing.T, b []byte) []*tar.Header {
	t.Helper()
	var out []*tar.Header
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

func TestWriteLayerIsSortedOwnedByRootAndTimeless(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	for _, p := range []string{"b/z.js", "a.txt", "b/y.sh"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o600)
		if filepath.Ext(p) == ".sh" {
			mode = 0o700
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(p), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../a.txt", filepath.Join(src, "b", "link")); err != nil {
		t.Fatal(err)
	}
	spec := layerSpec{Entries: []layerEntry{
		{Dest: "/app/tree", Src: src},
		{Dest: "/tmp", Dir: true, Mode: ptr(0o1777)},
		{Dest: "/home/app", Dir: true, UID: 65532, GID: 65532},
	}}
	var first, second bytes.Buffer
	if err := writeLayer(spec, &first); err != nil {
		t.Fatal(err)
	}
	if err := writeLayer(spec, &second); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("two writes of the same spec differ")
	}
	want := []struct {
		name     string
		mode     int64
		uid      int
		linkname string
	}{
		{"app/", 0o755, 0, ""},
		{"app/tree/", 0o755, 0, ""},
		{"app/tree/a.txt", 0o644, 0, ""},
		{"app/tree/b/", 0o755, 0, ""},
		{"app/tree/b/link", 0o777, 0, "../a.txt"},
		{"app/tree/b/y.sh", 0o755, 0, ""},
		{"app/tree/b/z.js", 0o644, 0, ""},
		{"home/", 0o755, 0, ""},
		{"home/app/", 0o755, 65532, ""},
		{"tmp/", 0o1777, 0, ""},
	}
	got := readTar(t, first.Bytes())
	if len(got) != len(want) {
		for _, h := range got {
			t.Log(h.Name)
		}
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		h := got[i]
		if h.Name != w.name || h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.uid || h.Linkname != w.linkname {
			t.Errorf("entry %d = %s %o %d:%d %q, want %s %o %d %q", i, h.Name, h.Mode, h.Uid, h.Gid, h.Linkname, w.name, w.mode, w.uid, w.linkname)
		}
		if !h.ModTime.Equal(epoch) || h.Uname != "" {
			t.Errorf("%s: mtime %v uname %q, want the epoch and no names", h.Name, h.ModTime, h.Uname)
		}
	}
}

func TestWriteLayerMergesPackageTars(t *testing.T) {
	dir := t.TempDir()
	in := tarFile(t, dir, []tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./lib/x86_64-linux-gnu/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./lib/x86_64-linux-gnu/libz.so.1", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./usr/bin/node", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "./usr/bin/nodejs", Typeflag: tar.TypeLink, Linkname: "./usr/bin/node"},
		{Name: "./usr/share/doc/nodejs/changelog.gz", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./usr/share/doc/nodejs/copyright", Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{
		"./lib/x86_64-linux-gnu/libz.so.1":    "zlib",
		"./usr/bin/node":                      "node",
		"./usr/share/doc/nodejs/changelog.gz": "log",
		"./usr/share/doc/nodejs/copyright":    "MIT",
	})
	spec := layerSpec{
		Entries:   []layerEntry{{Tar: in}, {Dest: "/lib", Link: "usr/lib"}},
		Exclude:   []string{"usr/share/doc/"},
		Keep:      []string{"usr/share/doc/*/copyright"},
		MergedUsr: true,
	}
	var buf bytes.Buffer
	if err := writeLayer(spec, &buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: owner %d:%d time %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		if h.Name == "usr/bin/nodejs" {
			content, _ := io.ReadAll(tr)
			if h.Typeflag != tar.TypeReg || string(content) != "node" {
				t.Errorf("hard link became type %q with %q, want a copy of node", h.Typeflag, content)
			}
		}
		names = append(names, h.Name)
	}
	want := []string{
		"lib", "usr/", "usr/bin/", "usr/bin/node", "usr/bin/nodejs",
		"usr/lib/", "usr/lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/libz.so.1",
		"usr/share/", "usr/share/doc/", "usr/share/doc/nodejs/", "usr/share/doc/nodejs/copyright",
	}
	if len(names) != len(want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %q, want %q", names, want)
		}
	}
}

func TestWriteLayerRejectsTwoFilesAtOnePath(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := layerSpec{Entries: []layerEntry{{Dest: "/a", Src: f}, {Dest: "a", Link: "b"}}}
	if err := writeLayer(spec, io.Discard); err == nil {
		t.Fatal("two entries at /a were accepted")
	}
}

func ptr(v int64) *int64 { return &v }
