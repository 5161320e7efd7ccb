// Package main writes the manual's "Despliegues y servicios" section (docs/manual/README.md) from
// the rendered manifests, so the section says what //k8s:manifests and //k8s:cloudrun deploy and
// cannot drift from them: its test regenerates the section and fails on any difference.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The generated section sits between these two lines of the manual.
const (
	Begin = "<!-- objetos:inicio (generado por tools/bazel run //docs/manual/objects; no editar a mano) -->"
	End   = "<!-- objetos:fin -->"
)

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   meta      `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
	// Data is a ConfigMap's: the ballot's table is read from the one the producers mount.
	Data map[string]string `yaml:"data"`
}

// ballot is proto/ballot.json as the rendered ConfigMap ballot carries it.
type ballot struct {
	Bands []struct {
		Name   string `json:"name"`
		Albums []struct {
			Album string `json:"album"`
			Year  int    `json:"year"`
		} `json:"albums"`
	} `json:"bands"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type podTemplate struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Containers           []container `yaml:"containers"`
		ContainerConcurrency int         `yaml:"containerConcurrency"`
		TimeoutSeconds       int         `yaml:"timeoutSeconds"`
	} `yaml:"spec"`
}

type workloadSpec struct {
	Replicas             *int        `yaml:"replicas"`
	Template             podTemplate `yaml:"template"`
	Schedule             string      `yaml:"schedule"`
	VolumeClaimTemplates []struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			Resources struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	} `yaml:"volumeClaimTemplates"`
	JobTemplate struct {
		Spec struct {
			Template podTemplate `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"jobTemplate"`
}

type serviceSpec struct {
	Type      string            `yaml:"type"`
	ClusterIP string            `yaml:"clusterIP"`
	Selector  map[string]string `yaml:"selector"`
	Ports     []struct {
		Name       string    `yaml:"name"`
		Port       int       `yaml:"port"`
		TargetPort yaml.Node `yaml:"targetPort"`
	} `yaml:"ports"`
}

type hpaSpec struct {
	ScaleTargetRef struct {
		Kind string `yaml:"kind"`
		Name string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicas int `yaml:"minReplicas"`
	MaxReplicas int `yaml:"maxReplicas"`
	Metrics     []struct {
		Type     string `yaml:"type"`
		Resource struct {
			Name   string `yaml:"name"`
			Target struct {
				AverageUtilization int `yaml:"averageUtilization"`
			} `yaml:"target"`
		} `yaml:"resource"`
	} `yaml:"metrics"`
}

type ingressSpec struct {
	TLS []struct {
		Hosts []string `yaml:"hosts"`
	} `yaml:"tls"`
	DefaultBackend *backend `yaml:"defaultBackend"`
	Rules          []struct {
		Host string `yaml:"host"`
		HTTP struct {
			Paths []struct {
				Path    string  `yaml:"path"`
				Backend backend `yaml:"backend"`
			} `yaml:"paths"`
		} `yaml:"http"`
	} `yaml:"rules"`
}

type backend struct {
	Service struct {
		Name string `yaml:"name"`
		Port struct {
			Number int    `yaml:"number"`
			Name   string `yaml:"name"`
		} `yaml:"port"`
	} `yaml:"service"`
}

type kafkaSpec struct {
	Kafka struct {
		Version   string `yaml:"version"`
		Listeners []struct {
			Name string `yaml:"name"`
			Port int    `yaml:"port"`
		} `yaml:"listeners"`
	} `yaml:"kafka"`
	Replicas   int      `yaml:"replicas"`
	Roles      []string `yaml:"roles"`
	Partitions int      `yaml:"partitions"`
	TopicName  string   `yaml:"topicName"`
	Storage    struct {
		Size string `yaml:"size"`
	} `yaml:"storage"`
}

// Decode reads every object of a multi-document YAML stream; empty documents are skipped.
func Decode(r io.Reader) ([]object, error) {
	dec := yaml.NewDecoder(r)
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding object %d: %w", len(out)+1, err)
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
}

// table is a Markdown table under a heading.
type table struct {
	heading string
	header  []string
	rows    [][]string
}

func (t *table) write(b *bytes.Buffer) {
	if len(t.rows) == 0 {
		return
	}
	// By namespace, then name, as written (without the code marks, which would sort "tally-data"
	// before "tally").
	key := func(r []string) string { return strings.ReplaceAll(r[0]+"\x00"+r[1], "`", "") }
	sort.SliceStable(t.rows, func(i, j int) bool { return key(t.rows[i]) < key(t.rows[j]) })
	fmt.Fprintf(b, "\n#### %s\n\n| %s |\n|%s\n", t.heading, strings.Join(t.header, " | "), strings.Repeat("---|", len(t.header)))
	for _, r := range t.rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(r, " | "))
	}
}

// Section renders the objects of the cluster and of Cloud Run as the manual's section body.
func Section(cluster, cloudRun []object) (string, error) {
	workloads := table{heading: "Cargas de trabajo (Deployment, StatefulSet, Job, CronJob)",
		header: []string{"namespace", "nombre", "tipo", "réplicas", "contenedores (imagen sin digest)", "puertos", "recursos (pide / límite)"}}
	services := table{heading: "Services", header: []string{"namespace", "nombre", "tipo", "puertos (puerto → destino)", "selecciona"}}
	hpas := table{heading: "HorizontalPodAutoscaler", header: []string{"namespace", "nombre", "escala", "réplicas", "métrica"}}
	ingresses := table{heading: "Ingress", header: []string{"namespace", "nombre", "host", "ruta", "Service:puerto"}}
	kafka := table{heading: "Kafka (recursos de Strimzi)", header: []string{"namespace", "nombre", "tipo", "detalle"}}
	ballots := table{heading: "La papeleta (ConfigMap ballot, de proto/ballot.json)", header: []string{"banda", "álbumes (año)"}}
	runs := table{heading: "Cloud Run", header: []string{"servicio", "contenedores (imagen sin digest)", "instancias", "concurrencia", "tiempo máximo", "salida a la VPC"}}
	others := map[string]int{}
	hpaOf := map[string]string{}
	for _, o := range cluster {
		if o.Kind == "HorizontalPodAutoscaler" {
			var s hpaSpec
			if err := o.Spec.Decode(&s); err != nil {
				return "", fmt.Errorf("%s %s: %w", o.Kind, o.Metadata.Name, err)
			}
			hpaOf[o.Metadata.Namespace+"/"+s.ScaleTargetRef.Kind+"/"+s.ScaleTargetRef.Name] = fmt.Sprintf("HPA %d–%d", s.MinReplicas, s.MaxReplicas)
		}
	}
	for _, o := range cluster {
		ns, name := code(o.Metadata.Namespace), code(o.Metadata.Name)
		where := fmt.Sprintf("%s %s", o.Kind, o.Metadata.Name)
		switch o.Kind {
		case "Deployment", "StatefulSet", "Job", "CronJob":
			var s workloadSpec
			if err := o.Spec.Decode(&s); err != nil {
				return "", fmt.Errorf("%s: %w", where, err)
			}
			tmpl := s.Template
			replicas := "1"
			switch {
			case o.Kind == "CronJob":
				tmpl = s.JobTemplate.Spec.Template
				replicas = "horario " + code(s.Schedule)
			case o.Kind == "Job":
				replicas = "una ejecución"
			case s.Replicas != nil:
				replicas = strconv.Itoa(*s.Replicas)
			case hpaOf[o.Metadata.Namespace+"/"+o.Kind+"/"+o.Metadata.Name] != "":
				replicas = hpaOf[o.Metadata.Namespace+"/"+o.Kind+"/"+o.Metadata.Name]
			}
			for _, v := range s.VolumeClaimTemplates {
				replicas += fmt.Sprintf("; volumen %s %s", code(v.Metadata.Name), v.Spec.Resources.Requests["storage"])
			}
			images, ports, resources := containers(tmpl.Spec.Containers)
			workloads.rows = append(workloads.rows, []string{ns, name, o.Kind, replicas, images, ports, resources})
		case "Service":
			var s serviceSpec
			if err := o.Spec.Decode(&s); err != nil {
				return "", fmt.Errorf("%s: %w", where, err)
			}
			typ := s.Type
			if typ == "" {
				typ = "ClusterIP"
			}
			if s.ClusterIP == "None" {
				typ = "headless"
			}
			if lb := o.Metadata.Annotations["networking.gke.io/load-balancer-type"]; lb != "" {
				typ += " (" + lb + ")"
			}
			var ports []string
			for _, p := range s.Ports {
				target := p.TargetPort.Value
				if target == "" {
					target = strconv.Itoa(p.Port)
				}
				ports = append(ports, fmt.Sprintf("%s %d → %s", p.Name, p.Port, target))
			}
			services.rows = append(services.rows, []string{ns, name, typ, strings.Join(ports, "<br>"), labels(s.Selector)})
		case "HorizontalPodAutoscaler":
			var s hpaSpec
			if err := o.Spec.Decode(&s); err != nil {
				return "", fmt.Errorf("%s: %w", where, err)
			}
			var metrics []string
			for _, m := range s.Metrics {
				if m.Type == "Resource" {
					metrics = append(metrics, fmt.Sprintf("%s al %d %%", m.Resource.Name, m.Resource.Target.AverageUtilization))
				} else {
					metrics = append(metrics, m.Type)
				}
			}
			hpas.rows = append(hpas.rows, []string{ns, name, s.ScaleTargetRef.Kind + " " + code(s.ScaleTargetRef.Name),
				fmt.Sprintf("%d–%d", s.MinReplicas, s.MaxReplicas), strings.Join(metrics, ", ")})
		case "Ingress":
			var s ingressSpec
			if err := o.Spec.Decode(&s); err != nil {
				return "", fmt.Errorf("%s: %w", where, err)
			}
			if s.DefaultBackend != nil {
				ingresses.rows = append(ingresses.rows, []string{ns, name, "(cualquiera)", "(por defecto)", s.DefaultBackend.String()})
			}
			for _, r := range s.Rules {
				host := r.Host
				if host == "" {
					host = "(cualquiera)"
				}
				for _, p := range r.HTTP.Paths {
					ingresses.rows = append(ingresses.rows, []string{ns, name, code(host), code(p.Path), p.Backend.String()})
				}
			}
		case "Kafka", "KafkaNodePool", "KafkaTopic":
			var s kafkaSpec
			if err := o.Spec.Decode(&s); err != nil {
				return "", fmt.Errorf("%s: %w", where, err)
			}
			kafka.rows = append(kafka.rows, []string{ns, name, o.Kind, s.detail(o.Kind)})
		case "ConfigMap":
			others[o.Kind]++
			if o.Metadata.Name != "ballot" {
				continue
			}
			var b ballot
			if err := json.Unmarshal([]byte(o.Data["ballot.json"]), &b); err != nil {
				return "", fmt.Errorf("%s: ballot.json: %w", where, err)
			}
			for _, band := range b.Bands {
				var albums []string
				for _, a := range band.Albums {
					albums = append(albums, fmt.Sprintf("%s (%d)", a.Album, a.Year))
				}
				ballots.rows = append(ballots.rows, []string{band.Name, strings.Join(albums, "; ")})
			}
		default:
			others[o.Kind]++
		}
	}
	for _, o := range cloudRun {
		where := fmt.Sprintf("%s %s", o.Kind, o.Metadata.Name)
		if o.Kind != "Service" || !strings.HasPrefix(o.APIVersion, "serving.knative.dev/") {
			return "", fmt.Errorf("%s (%s): not a Cloud Run service", where, o.APIVersion)
		}
		var s struct {
			Template podTemplate `yaml:"template"`
		}
		if err := o.Spec.Decode(&s); err != nil {
			return "", fmt.Errorf("%s: %w", where, err)
		}
		a := s.Template.Metadata.Annotations
		egress := a["run.googleapis.com/vpc-access-egress"]
		if egress == "" {
			egress = "ninguna"
		}
		images, _, _ := containers(s.Template.Spec.Containers)
		timeout := "por defecto"
		if t := s.Template.Spec.TimeoutSeconds; t > 0 {
			timeout = fmt.Sprintf("%d s", t)
		}
		runs.rows = append(runs.rows, []string{code(o.Metadata.Name), images,
			fmt.Sprintf("%s–%s", orDash(a["autoscaling.knative.dev/minScale"]), orDash(a["autoscaling.knative.dev/maxScale"])),
			strconv.Itoa(s.Template.Spec.ContainerConcurrency), timeout, code(egress)})
	}
	var b bytes.Buffer
	for _, t := range []*table{&workloads, &services, &hpas, &ingresses, &kafka, &runs, &ballots} {
		t.write(&b)
	}
	if len(others) > 0 {
		kinds := make([]string, 0, len(others))
		for k := range others {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		var parts []string
		for _, k := range kinds {
			// The kinds are names of the Kubernetes API, not Spanish nouns: counted, not pluralised.
			parts = append(parts, fmt.Sprintf("%s (%d)", k, others[k]))
		}
		fmt.Fprintf(&b, "\nAdemás, los manifiestos crean objetos de estos tipos (entre paréntesis, cuántos): %s.\n", strings.Join(parts, ", "))
	}
	return b.String(), nil
}

func (b backend) String() string {
	port := b.Service.Port.Name
	if b.Service.Port.Number != 0 {
		port = strconv.Itoa(b.Service.Port.Number)
	}
	return code(b.Service.Name + ":" + port)
}

func (s kafkaSpec) detail(kind string) string {
	switch kind {
	case "Kafka":
		var ls []string
		for _, l := range s.Kafka.Listeners {
			ls = append(ls, fmt.Sprintf("%s :%d", l.Name, l.Port))
		}
		return fmt.Sprintf("Kafka %s; listeners %s", s.Kafka.Version, strings.Join(ls, ", "))
	case "KafkaNodePool":
		return fmt.Sprintf("%s (%s); disco %s", count(s.Replicas, "nodo", "nodos"), strings.Join(s.Roles, " + "), s.Storage.Size)
	default:
		sizes := count(s.Partitions, "partición", "particiones") + ", " + count(s.Replicas, "réplica", "réplicas")
		if s.TopicName == "" {
			return sizes
		}
		return fmt.Sprintf("tópico %s: %s", code(s.TopicName), sizes)
	}
}

// count is n with its noun in the number it takes in Spanish: "1 partición", "6 particiones".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// containers summarizes a pod's containers: images without their digest (a digest changes with
// every build, the section should not), named ports, and resources.
func containers(cs []container) (images, ports, resources string) {
	var im, po, re []string
	for _, c := range cs {
		image, _, _ := strings.Cut(c.Image, "@")
		im = append(im, fmt.Sprintf("%s: %s", c.Name, code(image)))
		for _, p := range c.Ports {
			po = append(po, fmt.Sprintf("%s %d", p.Name, p.ContainerPort))
		}
		re = append(re, fmt.Sprintf("%s / %s", pair(c.Resources.Requests), pair(c.Resources.Limits)))
	}
	return strings.Join(im, "<br>"), orDash(strings.Join(po, ", ")), strings.Join(re, "<br>")
}

func pair(r map[string]string) string {
	if len(r) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s CPU, %s", orDash(r["cpu"]), orDash(r["memory"]))
}

func labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, code(k+"="+m[k]))
	}
	return orDash(strings.Join(out, " "))
}

func code(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + s + "`"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// Replace puts section between the Begin and End lines of manual.
func Replace(manual, section string) (string, error) {
	start := strings.Index(manual, Begin)
	end := strings.Index(manual, End)
	if start < 0 || end < start {
		return "", fmt.Errorf("the manual has no %q ... %q block", Begin, End)
	}
	return manual[:start+len(Begin)] + "\n" + section + "\n" + manual[end:], nil
}
