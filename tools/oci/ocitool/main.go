// Command ocitool builds and pushes OCI images without Docker, for the rules in
// //tools/oci:defs.bzl (layer_tar, oci_image, oci_push):
//
//	ocitool layer --spec layer.json --out layer.tar
//	ocitool image --spec image.json --out <layout dir> --digest <file>
//	ocitool push [--registry host[:port]] [--repository prefix] [--tag t]... --image name=<layout dir>...
//
// Layers and images are byte-for-byte reproducible: entries sorted by path, owned by uid/gid 0
// unless the spec says otherwise, every time is 1970-01-01 (docs/images.md).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ocitool: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: ocitool layer|image|push [flags]")
	}
	switch args[0] {
	case "layer":
		return layerCommand(args[1:])
	case "image":
		return imageCommand(args[1:])
	case "push":
		return pushCommand(ctx, logger, args[1:], os.Stdout)
	default:
		return fmt.Errorf("unknown command %q (want layer, image or push)", args[0])
	}
}

// readSpec reads the JSON spec a rule of defs.bzl wrote for a command.
func readSpec[T any](path string) (T, error) {
	var spec T
	raw, err := os.ReadFile(path)
	if err != nil {
		return spec, err
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return spec, fmt.Errorf("parse %s: %w", path, err)
	}
	return spec, nil
}
