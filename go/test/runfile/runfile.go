// Package runfile finds a test's data files in its Bazel runfiles.
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
