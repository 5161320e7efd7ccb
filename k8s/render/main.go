package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tally-voting/tally/k8s/imagepins"
)

// Usage: render --settings settings.yaml --redis-keys redis_keys.json --digest name=file.digest...
//
//	[--optional-digest name=file.digest...] [--pins image-pins.txt]
//	--configmap ns/name=file... --out rendered.yaml --refs images.txt manifest.yaml...
//
// images.txt gets one "name ref" line per image of ours, for //k8s:apply to push exactly those;
// and per optional image (--optional-digest: Strimzi's, Redis, the MongoDB-wire server) that the
// settings run (images.strimzi: ours makes apply install the operator with Strimzi's).
func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "render: %v\n", err)
		os.Exit(1)
	}
}

type pairs map[string][]string

func (p pairs) String() string { return fmt.Sprint(map[string][]string(p)) }

func (p pairs) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" || val == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	p[k] = append(p[k], val)
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	cfg := Config{Digests: map[string]string{}, ConfigMaps: map[string][]string{}}
	digestFiles, optionalFiles := pairs{}, pairs{}
	settings := fs.String("settings", "", "the deployment's settings (k8s/settings.yaml)")
	redisKeys := fs.String("redis-keys", "", "the Redis key layout (proto/redis_keys.json)")
	fs.Var(digestFiles, "digest", "name=file holding sha256:<hex> (repeatable)")
	fs.Var(optionalFiles, "optional-digest", "name=file holding sha256:<hex> of an image built here that runs when the settings choose it (repeatable)")
	pins := fs.String("pins", "", "third-party images' digests (k8s/image-pins.txt)")
	fs.Var(pairs(cfg.ConfigMaps), "configmap", "namespace/name=file (repeatable)")
	out := fs.String("out", "", "where to write the rendered manifests")
	refs := fs.String("refs", "", "where to write the name and pinned reference of each image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *settings == "" || *redisKeys == "" || *out == "" {
		return fmt.Errorf("--settings, --redis-keys and --out are required")
	}
	var err error
	if cfg.Values.Settings, err = LoadSettings(*settings); err != nil {
		return err
	}
	if cfg.Values.Redis.Users, err = RedisUsers(*redisKeys); err != nil {
		return err
	}
	if *pins != "" {
		if cfg.Pins, err = imagepins.Read(*pins); err != nil {
			return err
		}
	}
	cfg.Optional = map[string]string{}
	for _, d := range []struct {
		files pairs
		into  map[string]string
	}{{digestFiles, cfg.Digests}, {optionalFiles, cfg.Optional}} {
		for name, files := range d.files {
			data, err := os.ReadFile(files[0])
			if err != nil {
				return fmt.Errorf("image %s: %w", name, err)
			}
			d.into[name] = strings.TrimSpace(string(data))
		}
	}
	rendered, err := cfg.All(fs.Args())
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(rendered), 0o644); err != nil {
		return err
	}
	if *refs == "" {
		return nil
	}
	pushed, err := cfg.pushed()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, name := range pushed {
		ref, err := cfg.Ref(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s\n", name, ref)
	}
	return os.WriteFile(*refs, []byte(b.String()), 0o644)
}
