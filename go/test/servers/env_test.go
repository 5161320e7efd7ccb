// Package servers_test proves the test harness: each test talks to a real server that
// `stack exec` started for this run alone (tools/stack/stack_test.bzl).
package servers_test

import (
	"os"
	"testing"
)

func mustEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this test through its stack_test target", name)
	}
	return v
}
