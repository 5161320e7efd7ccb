// Command objects rewrites the "Despliegues y servicios" tables of docs/manual/README.md from
// the rendered manifests:
//
//	tools/bazel run //docs/manual/objects
//
// Bazel renders //k8s:manifests and //k8s:cloudrun first and passes them; the manual is written
// in the checkout (BUILD_WORKSPACE_DIRECTORY). objects_test fails while the two differ.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "objects: %v\n", err)
		os.Exit(1)
	}
}

func run(_ context.Context) error {
	manifests := flag.String("manifests", "", "the cluster's rendered manifests (//k8s:manifests.yaml)")
	cloudRun := flag.String("cloudrun", "", "the rendered Cloud Run services (//k8s:cloudrun.yaml)")
	manual := flag.String("manual", "docs/manual/README.md", "the manual, relative to the checkout")
	flag.Parse()
	workspace := os.Getenv("BUILD_WORKSPACE_DIRECTORY")
	if workspace == "" {
		return fmt.Errorf("run me with tools/bazel run //docs/manual/objects (no BUILD_WORKSPACE_DIRECTORY)")
	}
	path := filepath.Join(workspace, *manual)
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := Update(string(text), *manifests, *cloudRun)
	if err != nil {
		return err
	}
	if updated == string(text) {
		fmt.Printf("objects: %s is up to date\n", *manual)
		return nil
	}
	if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
		return err
	}
	fmt.Printf("objects: rewrote the section of %s\n", *manual)
	return nil
}

// Update returns the manual with its section generated from the two rendered files.
func Update(manual, manifestsPath, cloudRunPath string) (string, error) {
	var sets [2][]object
	for i, path := range []string{manifestsPath, cloudRunPath} {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		sets[i], err = Decode(f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	}
	section, err := Section(sets[0], sets[1])
	if err != nil {
		return "", err
	}
	return Replace(manual, section)
}
