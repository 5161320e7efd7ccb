package stack

import (
	"os"
	"path/filepath"
	"testing"
)

// The API's package reaches the stack as a directory that `bazel run` links as a whole and
// `bazel test` fills with links to files: CopyTree copies the files either way.
func TestCopyTreeFollowsLinks(t *testing.T) {
	tmp := t.TempDir()
	pkg := filepath.Join(tmp, "pkg")
	if err := os.MkdirAll(filepath.Join(pkg, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "server.js"), []byte("// server"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tmp, "server.js"), filepath.Join(pkg, "src", "server.js")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(pkg, link); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(tmp, "app")
	if err := CopyTree(link, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "src", "server.js"))
	if err != nil || string(got) != "// server" {
		t.Fatalf("copied server.js: %q, %v", got, err)
	}
	if info, err := os.Lstat(filepath.Join(dst, "src", "server.js")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("the copy should be a regular file: %v, %v", info, err)
	}
}
