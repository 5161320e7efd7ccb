// Package connections reads the table of connections Tally's NetworkPolicies must admit and a
// sample of those they must refuse (connections.yaml), and names the pods at their ends: the
// workloads of the rendered manifests and the pods the table adds. Two tests share it: the render
// test computes what the rendered policies admit; the real node's test makes the connections.
package connections

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// Conn is one connection: from an end, to an end's port.
type Conn struct {
	From     string `yaml:"from"`
	To       string `yaml:"to"`
	Protocol string `yaml:"protocol"`
	Port     int    `yaml:"port"`
}

func (c Conn) String() string {
	return fmt.Sprintf("%s → %s %s/%d", c.From, c.To, c.Protocol, c.Port)
}

// Pod is a pod at an end: its namespace and labels.
type Pod struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// Table is connections.yaml, with the DNS connections spelled out among Admitted.
type Table struct {
	// Pods are the pods Tally's manifests do not make but talk to.
	Pods     []Pod
	Admitted []Conn
	Refused  []Conn
}

// Load reads the table.
func Load(path string) (Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Table{}, err
	}
	var file struct {
		Pods     []Pod  `yaml:"pods"`
		Admitted []Conn `yaml:"admitted"`
		Refused  []Conn `yaml:"refused"`
		DNS      struct {
			Clients []string `yaml:"clients"`
			Servers []string `yaml:"servers"`
		} `yaml:"dns"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return Table{}, fmt.Errorf("%s: %w", path, err)
	}
	t := Table{Pods: file.Pods, Admitted: file.Admitted, Refused: file.Refused}
	for _, client := range file.DNS.Clients {
		for _, server := range file.DNS.Servers {
			t.Admitted = append(t.Admitted, Conn{client, server, "UDP", 53}, Conn{client, server, "TCP", 53})
		}
	}
	for _, c := range append(t.Admitted, t.Refused...) {
		if c.From == "" || c.To == "" || (c.Protocol != "TCP" && c.Protocol != "UDP") || c.Port <= 0 {
			return Table{}, fmt.Errorf("%s: incomplete connection %+v", path, c)
		}
	}
	return t, nil
}

// WorkloadPod is the pod a rendered object makes (a Deployment's, StatefulSet's, Job's or
// CronJob's template), named after the object; ok is false for any other object.
func WorkloadPod(obj map[string]any) (pod Pod, ok bool) {
	template := []string{"spec", "template"}
	switch str(obj, "kind") {
	case "Deployment", "StatefulSet", "Job":
	case "CronJob":
		template = []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return Pod{}, false
	}
	labels := map[string]string{}
	if m, isMap := at(obj, append(template, "metadata", "labels")...).(map[string]any); isMap {
		for k, v := range m {
			labels[k] = fmt.Sprint(v)
		}
	}
	return Pod{Name: str(obj, "metadata", "name"), Namespace: str(obj, "metadata", "namespace"), Labels: labels}, true
}

// Workloads reads a rendered manifests file and returns the pods of its workloads by name.
func Workloads(path string) (map[string]Pod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pods := map[string]Pod{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return pods, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if pod, ok := WorkloadPod(obj); ok {
			pods[pod.Name] = pod
		}
	}
}

func at(v any, path ...string) any {
	for _, key := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

func str(v any, path ...string) string { s, _ := at(v, path...).(string); return s }
