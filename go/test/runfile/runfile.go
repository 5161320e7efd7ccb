// Package runfile finds a test's data files: in its Bazel runfiles, or in the checkout under go test.
package runfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the absolute path of the runfile whose runfiles path is in the environment
// variable env (set in the test's BUILD rule as "$(rlocationpath //some:target)"). It fails the
// test when env is unset, which means the test was not run by bazel test.
func Path(t testing.TB, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("$%s is not set (run under bazel test)", env)
	}
	return filepath.Join(os.Getenv("TEST_SRCDIR"), p)
}

// Repo returns the path of the repository file rel (workspace-relative, such as
// "proto/redis_keys.json"): in the test's runfiles under Bazel (the test's rule lists it in data),
// else in the checkout that holds the working directory, so that go test finds it too.
func Repo(t testing.TB, rel string) string {
	t.Helper()
	if dir := os.Getenv("TEST_SRCDIR"); dir != "" {
		return filepath.Join(dir, "_main", rel)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "MODULE.bazel")); err == nil {
			return filepath.Join(dir, rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("%s: no checkout above the working directory (run under bazel test or go test)", rel)
		}
		dir = parent
	}
}
