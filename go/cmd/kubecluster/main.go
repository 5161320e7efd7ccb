// Command kubecluster runs the tests' Kubernetes control plane (go/internal/kubecluster) until
// Ctrl-C, to try //k8s:apply and //k8s:diff by hand without a real cluster:
//
//	tools/bazel run //tools/kube:cluster             # prints the kubeconfig to use
//	tools/bazel run //k8s:apply -- --kubeconfig <that file> --skip-push
//
// Stand-ins for GKE's CRDs (tools/kube/gke-crds.yaml) are installed when given, and
// PersistentVolumes stand in for a StorageClass, so the whole of Tally's manifests applies and
// rolls out (on kwok: no containers run; Kafka never becomes Ready without a test marking it,
// so apply waits for it until its --timeout). State lives in a temporary directory, removed on
// exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tally-voting/tally/go/internal/kubecluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "kubecluster: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg kubecluster.Config
	flag.StringVar(&cfg.Bin, "bin", "", "directory of etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
	flag.StringVar(&cfg.Stages, "stages", "", "directory of kwok's Stage configs")
	crds := flag.String("crds", "", "a YAML file of CRDs to install (GKE's stand-ins); empty for none")
	volumes := flag.Int("volumes", 2, "PersistentVolumes to offer to StatefulSets")
	flag.Parse()
	if cfg.Bin == "" || cfg.Stages == "" {
		return fmt.Errorf("--bin and --stages are required (tools/bazel run //tools/kube:cluster sets them)")
	}
	dir, err := os.MkdirTemp("", "kubecluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.Dir, cfg.Log = dir, os.Stderr
	c, err := kubecluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Stop()
	if *crds != "" {
		if err := c.InstallCRDs(ctx, *crds); err != nil {
			return err
		}
	}
	if err := c.AddVolumes(ctx, *volumes); err != nil {
		return err
	}
	fmt.Printf("Kubernetes API at %s; node %s (kwok). Ctrl-C stops it.\n  export KUBECONFIG=%s\n",
		c.Server, kubecluster.NodeName, c.Kubeconfig)
	select {
	case <-ctx.Done():
		return nil
	case err := <-c.Exited():
		return err
	}
}
