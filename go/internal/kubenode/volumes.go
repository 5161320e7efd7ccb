package kubenode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Kubectl runs kubectl against the node's cluster with stdin and returns its output
// (kubecluster.Cluster.Kubectl).
type Kubectl func(ctx context.Context, stdin string, args ...string) (string, error)

// volumeLabel marks the PersistentVolumes ServeVolumes made, the only ones it releases.
const volumeLabel = "tally-node/volume"

// ServeVolumes is the node's storage, as a cluster's volume provisioner is: every
// PersistentVolumeClaim left Pending without a volume gets a PersistentVolume of its own, a
// directory under the node's Dir bound to it (hostPath, writable by any user, as Strimzi's and
// Redis's non-root users need), and a volume released by its claim's deletion is removed with
// its directory (the Delete reclaim policy, done here: the controller-manager deletes hostPath
// volumes only under /tmp). It polls until ctx ends; each volume made or removed is logged.
// Without it a real node's claims stay Pending: the test cluster has no storage driver.
func (n *Node) ServeVolumes(ctx context.Context, kubectl Kubectl, log io.Writer) {
	for {
		if err := n.serveVolumesOnce(ctx, kubectl, log); err != nil && ctx.Err() == nil {
			fmt.Fprintf(log, "volumes: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

type objectList[T any] struct {
	Items []T `json:"items"`
}

type claim struct {
	Metadata struct {
		Name, Namespace, UID string
	} `json:"metadata"`
	Spec struct {
		AccessModes      []string `json:"accessModes"`
		StorageClassName *string  `json:"storageClassName"`
		VolumeName       string   `json:"volumeName"`
		Resources        struct {
			Requests map[string]string `json:"requests"`
		} `json:"resources"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

type volume struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		HostPath struct {
			Path string `json:"path"`
		} `json:"hostPath"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

func (n *Node) serveVolumesOnce(ctx context.Context, kubectl Kubectl, log io.Writer) error {
	out, err := kubectl(ctx, "", "get", "pvc", "--all-namespaces", "-o", "json")
	if err != nil {
		return err
	}
	var claims objectList[claim]
	if err := json.Unmarshal([]byte(out), &claims); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	var errs []error
	for _, c := range claims.Items {
		if c.Status.Phase != "Pending" || c.Spec.VolumeName != "" {
			continue
		}
		if err := n.provision(ctx, kubectl, log, c); err != nil {
			errs = append(errs, err)
		}
	}
	out, err = kubectl(ctx, "", "get", "pv", "-l", volumeLabel, "-o", "json")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var volumes objectList[volume]
	if err := json.Unmarshal([]byte(out), &volumes); err != nil {
		return errors.Join(append(errs, fmt.Errorf("volumes: %w", err))...)
	}
	for _, v := range volumes.Items {
		if v.Status.Phase != "Released" {
			continue
		}
		if err := os.RemoveAll(v.Spec.HostPath.Path); err != nil {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Metadata.Name, err))
			continue
		}
		if _, err := kubectl(ctx, "", "delete", "pv", v.Metadata.Name, "--wait=false"); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(log, "volumes: %s released: removed with %s\n", v.Metadata.Name, v.Spec.HostPath.Path)
	}
	return errors.Join(errs...)
}

func (n *Node) provision(ctx context.Context, kubectl Kubectl, log io.Writer, c claim) error {
	name := "pv-" + c.Metadata.UID
	dir := filepath.Join(n.cfg.Dir, "volumes", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Any user: pods run as their images' users (Strimzi's 1001, Redis's), and a hostPath
	// volume gets no fsGroup ownership.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	class := ""
	if c.Spec.StorageClassName != nil {
		class = *c.Spec.StorageClassName
	}
	size := c.Spec.Resources.Requests["storage"]
	pv := map[string]any{
		"apiVersion": "v1",
		"kind":       "PersistentVolume",
		"metadata":   map[string]any{"name": name, "labels": map[string]string{volumeLabel: "true"}},
		"spec": map[string]any{
			"capacity":                      map[string]string{"storage": size},
			"accessModes":                   c.Spec.AccessModes,
			"storageClassName":              class,
			"persistentVolumeReclaimPolicy": "Retain",
			"hostPath":                      map[string]string{"path": dir, "type": "Directory"},
			"claimRef": map[string]string{
				"namespace": c.Metadata.Namespace, "name": c.Metadata.Name, "uid": c.Metadata.UID,
			},
		},
	}
	doc, err := json.Marshal(pv)
	if err != nil {
		return err
	}
	if out, err := kubectl(ctx, string(doc), "create", "-f", "-"); err != nil {
		if strings.Contains(out, "AlreadyExists") || strings.Contains(out, "already exists") {
			return nil // made on an earlier pass, not bound yet
		}
		return fmt.Errorf("volume for claim %s/%s: %w", c.Metadata.Namespace, c.Metadata.Name, err)
	}
	fmt.Fprintf(log, "volumes: claim %s/%s (%s): %s at %s\n", c.Metadata.Namespace, c.Metadata.Name, size, name, dir)
	return nil
}
