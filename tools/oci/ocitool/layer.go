package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// layerSpec is what layer_tar (defs.bzl) writes: where each input goes in the layer.
type layerSpec struct {
	Entries []layerEntry `json:"entries"`
	// Exclude drops paths under these prefixes (after merging), unless they match a Keep pattern
	// (path.Match syntax): e.g. exclude usr/share/doc/ but keep usr/share/doc/*/copyright.
	Exclude []string `json:"exclude"`
	Keep    []string `json:"keep"`
	// MergedUsr moves /bin, /sbin and /lib* under /usr, as Debian's merged /usr does, so that
	// package contents never collide with the /bin -> usr/bin symlinks.
	MergedUsr bool `json:"merged_usr"`
}

// layerEntry is one input. Exactly one of Src, Tar, Link or Dir is set.
type layerEntry struct {
	Dest string `json:"dest"`
	// Src is a file, or a directory copied recursively (a tree artifact or source directory).
	Src string `json:"src"`
	// Tar is a tar file whose entries are merged in (Debian packages' data, for instance).
	Tar string `json:"tar"`
	// Link makes Dest a symlink to Link.
	Link string `json:"link"`
	// Dir makes Dest an (empty) directory.
	Dir bool `json:"dir"`
	// Mode overrides the mode of a single file or of a Dir entry (0755 for directories and
	// executables, 0644 for other files); UID and GID the owner (0:0) of everything the entry adds.
	Mode *int64 `json:"mode"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

// node is one entry of the layer being assembled.
type node struct {
	header tar.Header
	data   []byte // file content, when it came from a tar
	src    string // file content, when it comes from disk
}

// epoch is every time in a layer: fixed, so that the same inputs give the same bytes.
var epoch = time.Unix(0, 0).UTC()

func layerCommand(args []string) error {
	fl := flag.NewFlagSet("layer", flag.ContinueOnError)
	specPath := fl.String("spec", "", "layer spec (JSON)")
	out := fl.String("out", "", "tar file to write")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *specPath == "" || *out == "" {
		return errors.New("layer: --spec and --out are required")
	}
	spec, err := readSpec[layerSpec](*specPath)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	if err := writeLayer(spec, f); err != nil {
		f.Close()
		return fmt.Errorf("layer %s: %w", *out, err)
	}
	return f.Close()
}

// writeLayer assembles every entry of spec and writes them as one tar, sorted by path.
func writeLayer(spec layerSpec, w io.Writer) error {
	b := layerBuilder{nodes: map[string]*node{}, mergedUsr: spec.MergedUsr}
	for _, e := range spec.Entries {
		if err := b.add(e); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(b.nodes))
	for name := range b.nodes {
		if excluded(name, spec.Exclude, spec.Keep) {
			continue
		}
		names = append(names, name)
	}
	// Parents of kept entries stay even when a prefix excluded them (usr/share/doc/ itself).
	kept := map[string]bool{}
	for _, name := range names {
		kept[name] = true
	}
	for _, name := range names {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if !kept[dir] {
				kept[dir] = true
				names = append(names, dir)
				if b.nodes[dir] == nil {
					b.nodes[dir] = dirNode(dir, 0o755, 0, 0)
				}
			}
		}
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, name := range names {
		n := b.nodes[name]
		hdr := n.header
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name = name + "/"
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := n.writeData(tw); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return tw.Close()
}

func (n *node) writeData(w io.Writer) error {
	if n.src == "" {
		_, err := w.Write(n.data)
		return err
	}
	f, err := os.Open(n.src)
	if err != nil {
		return err
	}
	defer f.Close()
	written, err := io.Copy(w, f)
	if err == nil && written != n.header.Size {
		err = fmt.Errorf("%s changed size while being read", n.src)
	}
	return err
}

func excluded(name string, exclude, keep []string) bool {
	for _, prefix := range exclude {
		if strings.HasPrefix(name+"/", prefix) {
			for _, pattern := range keep {
				if ok, _ := path.Match(pattern, name); ok {
					return false
				}
			}
			return true
		}
	}
	return false
}

type layerBuilder struct {
	nodes     map[string]*node
	mergedUsr bool
}

// clean turns a destination path into the layer's form: relative, no "./".
func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// cleanArchived is clean for a merged tar's paths, which also go under usr/ for the merged-/usr
// directories when asked.
func (b *layerBuilder) cleanArchived(p string) string {
	p = clean(p)
	if b.mergedUsr {
		for _, top := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
			if p == top || strings.HasPrefix(p, top+"/") {
				return "usr/" + p
			}
		}
	}
	return p
}

func fileMode(e layerEntry, def int64) int64 {
	if e.Mode != nil {
		return *e.Mode
	}
	return def
}

func dirNode(name string, mode int64, uid, gid int) *node {
	return &node{header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid, ModTime: epoch}}
}

// put records n at name; the first entry for a path wins, except that a directory may be
// declared more than once (Debian packages all ship usr/, for instance).
func (b *layerBuilder) put(name string, n *node) error {
	if name == "" {
		return nil
	}
	if old, ok := b.nodes[name]; ok {
		if old.header.Typeflag == tar.TypeDir && n.header.Typeflag == tar.TypeDir {
			return nil
		}
		if old.header.Typeflag == n.header.Typeflag && n.header.Typeflag == tar.TypeSymlink &&
			old.header.Linkname == n.header.Linkname {
			return nil
		}
		return fmt.Errorf("%s is in the layer twice", name)
	}
	n.header.Name = name
	n.header.ModTime = epoch
	n.header.Format = tar.FormatPAX
	b.nodes[name] = n
	return nil
}

func (b *layerBuilder) add(e layerEntry) error {
	dest := clean(e.Dest)
	switch {
	case e.Link != "":
		return b.put(dest, &node{header: tar.Header{Typeflag: tar.TypeSymlink, Linkname: e.Link,
			Mode: 0o777, Uid: e.UID, Gid: e.GID}})
	case e.Dir:
		return b.put(dest, dirNode(dest, fileMode(e, 0o755), e.UID, e.GID))
	case e.Tar != "":
		return b.addTar(e.Tar)
	case e.Src != "":
		return b.addPath(e, dest)
	default:
		return fmt.Errorf("entry for %q has none of src, tar, link, dir", e.Dest)
	}
}

// addPath adds a file, or a directory and everything under it. Inside a directory, a relative
// symlink is kept as a link (node_modules/.bin); an absolute one is followed, because that is
// how Bazel's sandbox presents the files of a tree artifact.
func (b *layerBuilder) addPath(e layerEntry, dest string) error {
	info, err := os.Stat(e.Src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return b.put(dest, fileNode(e, e.Src, info))
	}
	// WalkDir does not descend into a symlink, and Bazel hands source directories over as one.
	root, err := filepath.EvalSymlinks(e.Src)
	if err != nil {
		return err
	}
	e.Mode = nil
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := dest
		if rel != "." {
			name = path.Join(dest, filepath.ToSlash(rel))
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(target) {
				return b.put(name, &node{header: tar.Header{Typeflag: tar.TypeSymlink, Linkname: target,
					Mode: 0o777, Uid: e.UID, Gid: e.GID}})
			}
			info, err := os.Stat(p)
			if err != nil {
				return err
			}
			if info.IsDir() {
				sub := e
				sub.Src = p
				if err := b.addPath(sub, name); err != nil {
					return err
				}
				return nil
			}
			return b.put(name, fileNode(e, p, info))
		}
		if d.IsDir() {
			return b.put(name, dirNode(name, fileMode(e, 0o755), e.UID, e.GID))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return b.put(name, fileNode(e, p, info))
	})
}

func fileNode(e layerEntry, src string, info fs.FileInfo) *node {
	mode := int64(0o644)
	if info.Mode()&0o111 != 0 {
		mode = 0o755
	}
	return &node{src: src, header: tar.Header{Typeflag: tar.TypeReg, Size: info.Size(),
		Mode: fileMode(e, mode), Uid: e.UID, Gid: e.GID}}
}

// addTar merges a tar's entries, owned by root. Hard links become copies of their target, so
// that sorting the entries cannot put a link before the file it names.
func (b *layerBuilder) addTar(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	data := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		name := b.cleanArchived(hdr.Name)
		n := &node{header: tar.Header{Typeflag: hdr.Typeflag, Mode: hdr.Mode & 0o7777}}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg:
			content, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", file, hdr.Name, err)
			}
			n.data, n.header.Size = content, int64(len(content))
			data[name] = content
		case tar.TypeSymlink:
			n.header.Linkname = hdr.Linkname
		case tar.TypeLink:
			target := b.cleanArchived(hdr.Linkname)
			content, ok := data[target]
			if !ok {
				return fmt.Errorf("%s: hard link %s names %s, which comes later or is not a file", file, hdr.Name, hdr.Linkname)
			}
			n.header.Typeflag = tar.TypeReg
			n.data, n.header.Size = content, int64(len(content))
		default:
			return fmt.Errorf("%s: %s has unsupported type %q", file, hdr.Name, hdr.Typeflag)
		}
		if err := b.put(name, n); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
}
