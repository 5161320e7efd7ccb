package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Settings are one deployment's choices (k8s/settings.yaml): the manifests read them as
// template values, {{ .Domain }} and so on.
type Settings struct {
	Registry   string          `yaml:"registry"`
	Repository string          `yaml:"repository"`
	Domain     string          `yaml:"domain"`
	Project    string          `yaml:"project"`
	Region     string          `yaml:"region"`
	CloudRun   CloudRun        `yaml:"cloudRun"`
	Kafka      KafkaSettings   `yaml:"kafka"`
	MongoDB    MongoDBSettings `yaml:"mongodb"`
	Images     ImageSettings   `yaml:"images"`
}

// ImageSettings say where the images that are not Tally's own programs come from.
type ImageSettings struct {
	// Strimzi is "upstream" (Strimzi's released images; the default) or "ours" (built from
	// Strimzi's source by //k8s/images/strimzi, pushed and pinned with Tally's images).
	Strimzi string `yaml:"strimzi"`
	// Redis is "upstream" (the Redis project's image; the default) or "ours" (Debian's
	// redis-server package by Tally's image rules, //k8s/images/redis, pushed and pinned with
	// Tally's images).
	Redis string `yaml:"redis"`
	// Grafana is "upstream" (Grafana's released image; the default) or "none": Grafana's
	// workload is left out, for test settings on machines where no Grafana image can be had
	// (its ConfigMaps, NetworkPolicies and Secrets stay; docs/kubernetes.md).
	Grafana string `yaml:"grafana"`
	// RequireDigests makes the render refuse a third-party image with no digest in the pins
	// (k8s/image-pins.txt) instead of naming it by its version tag.
	RequireDigests bool `yaml:"requireDigests"`
}

// OurStrimzi says whether the Strimzi operator runs the images built here.
func (i ImageSettings) OurStrimzi() bool { return i.Strimzi == "ours" }

// OurRedis says whether Redis runs the image built here.
func (i ImageSettings) OurRedis() bool { return i.Redis == "ours" }

// WithGrafana says whether Grafana's workload is rendered.
func (i ImageSettings) WithGrafana() bool { return i.Grafana != "none" }

// Runs says whether the settings run an image built here that runs only when chosen (k8s/images.bzl's
// OPTIONAL_IMAGES); a name the settings know nothing about is an error, so a new optional image
// cannot be pushed, or left out, by accident.
func (s Settings) Runs(image string) (bool, error) {
	switch image {
	case "strimzi-operator", "strimzi-kafka":
		return s.Images.OurStrimzi(), nil
	case "redis":
		return s.Images.OurRedis(), nil
	case "ferretdb":
		return s.MongoDB.FerretDB(), nil
	}
	return false, fmt.Errorf("no setting chooses the image %q built here", image)
}

// CloudRun is where the Cloud Run services' Direct VPC egress comes from.
type CloudRun struct {
	Network     string `yaml:"network"`
	Subnet      string `yaml:"subnet"`
	EgressRange string `yaml:"egressRange"`
}

// KafkaSettings size the Kafka cluster.
type KafkaSettings struct {
	Brokers int `yaml:"brokers"`
}

// Replication is every topic's replication factor: one copy per broker.
func (k KafkaSettings) Replication() int { return k.Brokers }

// MinInsync is min.insync.replicas: with three copies an acks=all write needs two, so one broker
// may be down; with one copy, one.
func (k KafkaSettings) MinInsync() int { return (k.Brokers + 1) / 2 }

// MongoDBSettings size the replica set and say what serves it.
type MongoDBSettings struct {
	Members int `yaml:"members"`
	// Server is mongod (a replica set with users, formed by the setup Job) or ferretdb, a
	// MongoDB-wire server without replica sets or user commands (test settings only): the setup
	// Job then only waits for it.
	Server string `yaml:"server"`
}

// FerretDB says whether the MongoDB workload runs the MongoDB-wire server built here
// (//k8s/images:ferretdb) instead of mongod.
func (m MongoDBSettings) FerretDB() bool { return m.Server == "ferretdb" }

// ReplicaSet is the set's name the setup Job initiates, "" when the server has none.
func (m MongoDBSettings) ReplicaSet() string {
	if m.Server == "mongod" {
		return "rs0"
	}
	return ""
}

// Users says whether the setup Job keeps the users consumer and api (mongod has user commands).
func (m MongoDBSettings) Users() bool { return m.Server == "mongod" }

// Hosts lists the members' stable names for a replica-set connection string.
func (m MongoDBSettings) Hosts() string {
	hosts := make([]string, m.Members)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("mongodb-%d.mongodb.tally-data.svc:27017", i)
	}
	return strings.Join(hosts, ",")
}

var (
	dnsName  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$`)
	gcpName  = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
	repoPath = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
	registry = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?$`)
)

// LoadSettings reads and checks a settings file; unknown keys are errors, so a typo cannot leave
// a value at its default unnoticed.
func LoadSettings(file string) (Settings, error) {
	var s Settings
	data, err := os.ReadFile(file)
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("settings %s: %w", file, err)
	}
	if err := s.Check(); err != nil {
		return s, fmt.Errorf("settings %s: %w", file, err)
	}
	return s, nil
}

// Check names every setting that cannot work.
func (s Settings) Check() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !registry.MatchString(s.Registry) {
		bad("registry %q is not a host[:port]", s.Registry)
	}
	if !repoPath.MatchString(s.Repository) {
		bad("repository %q is not a lowercase path", s.Repository)
	}
	if !dnsName.MatchString(s.Domain) {
		bad("domain %q is not a DNS name", s.Domain)
	}
	for name, v := range map[string]string{"project": s.Project, "region": s.Region,
		"cloudRun.network": s.CloudRun.Network, "cloudRun.subnet": s.CloudRun.Subnet} {
		if !gcpName.MatchString(v) {
			bad("%s %q is not a Google Cloud resource name", name, v)
		}
	}
	if p, err := netip.ParsePrefix(s.CloudRun.EgressRange); err != nil || !p.Addr().Is4() || p != p.Masked() || !p.Addr().IsPrivate() {
		bad("cloudRun.egressRange %q is not a private IPv4 range in CIDR form (a subnet's primary range)", s.CloudRun.EgressRange)
	}
	if s.Kafka.Brokers != 1 && s.Kafka.Brokers != 3 {
		bad("kafka.brokers is %d: want 1 or 3", s.Kafka.Brokers)
	}
	if s.MongoDB.Members != 1 && s.MongoDB.Members != 3 {
		bad("mongodb.members is %d: want 1 or 3", s.MongoDB.Members)
	}
	switch s.MongoDB.Server {
	case "mongod":
	case "ferretdb":
		if s.MongoDB.Members != 1 {
			bad("mongodb.server ferretdb has no replica set: want mongodb.members 1, not %d", s.MongoDB.Members)
		}
	default:
		bad("mongodb.server is %q: want mongod (or ferretdb, in test settings)", s.MongoDB.Server)
	}
	for name, v := range map[string]string{"images.strimzi": s.Images.Strimzi, "images.redis": s.Images.Redis} {
		if v != "" && v != "upstream" && v != "ours" {
			bad("%s is %q: want upstream or ours", name, v)
		}
	}
	if g := s.Images.Grafana; g != "" && g != "upstream" && g != "none" {
		bad("images.grafana is %q: want upstream (or none, in test settings)", g)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// RedisUser is one Redis ACL user of the key layout (proto/redis_keys.json): its keys are those
// the layout's keys give it as writer or reader, its commands the layout's for it.
type RedisUser struct {
	Name string
	// Secret holds its password (key "password"); PasswordVar is the variable Redis's container
	// reads it into.
	Secret, PasswordVar string
	Keys                []string
	Commands            []string
}

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// RedisUsers derives the ACL users from the key layout: each of its users gets exactly the keys
// the layout says it writes or reads, a {placeholder} becoming a wildcard, and its commands.
func RedisUsers(layoutFile string) ([]RedisUser, error) {
	var layout struct {
		Keys []struct {
			Template string   `json:"template"`
			Writer   string   `json:"writer"`
			Readers  []string `json:"readers"`
		} `json:"keys"`
		Users []struct {
			Name     string   `json:"name"`
			Commands []string `json:"commands"`
		} `json:"users"`
	}
	data, err := os.ReadFile(layoutFile)
	if err != nil {
		return nil, fmt.Errorf("redis key layout: %w", err)
	}
	if err := json.Unmarshal(data, &layout); err != nil {
		return nil, fmt.Errorf("redis key layout %s: %w", layoutFile, err)
	}
	if len(layout.Users) == 0 {
		return nil, fmt.Errorf("redis key layout %s: no users", layoutFile)
	}
	var users []RedisUser
	for _, lu := range layout.Users {
		if len(lu.Commands) == 0 || lu.Commands[0] != "-@all" {
			return nil, fmt.Errorf("redis key layout %s: user %s's commands must start from -@all, got %v", layoutFile, lu.Name, lu.Commands)
		}
		u := RedisUser{
			Name:        lu.Name,
			Secret:      "redis-" + lu.Name,
			PasswordVar: strings.ToUpper(lu.Name) + "_PASSWORD",
			Commands:    lu.Commands,
		}
		for _, k := range layout.Keys {
			if k.Writer == lu.Name || slices.Contains(k.Readers, lu.Name) {
				u.Keys = append(u.Keys, placeholder.ReplaceAllString(k.Template, "*"))
			}
		}
		if len(u.Keys) == 0 {
			return nil, fmt.Errorf("redis key layout %s: no key names %s as writer or reader", layoutFile, lu.Name)
		}
		users = append(users, u)
	}
	return users, nil
}

// Values are what a manifest template sees.
type Values struct {
	Settings
	Redis struct{ Users []RedisUser }
}
