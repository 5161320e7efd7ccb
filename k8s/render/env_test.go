package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tally-voting/tally/go/test/runfile"
)

// settingsSources maps each of our images to the source text of the code that reads its program's
// settings ($SETTINGS_<IMAGE>: runfiles paths of the service's settings_srcs).
func settingsSources(t *testing.T) map[string]string {
	t.Helper()
	sources := map[string]string{}
	for _, kv := range os.Environ() {
		key, value, _ := strings.Cut(kv, "=")
		image, ok := strings.CutPrefix(key, "SETTINGS_")
		if !ok {
			continue
		}
		image = strings.ToLower(strings.ReplaceAll(image, "_", "-"))
		for _, path := range strings.Fields(value) {
			data, err := os.ReadFile(filepath.Join(os.Getenv("TEST_SRCDIR"), path))
			if err != nil {
				t.Fatal(err)
			}
			sources[image] += string(data)
		}
	}
	if len(sources) == 0 {
		t.Fatal("no $SETTINGS_<IMAGE>")
	}
	return sources
}

// containers finds every container in a manifest document, wherever its kind keeps them.
func containers(node any, found *[]map[string]any) {
	switch n := node.(type) {
	case map[string]any:
		for key, v := range n {
			if list, ok := v.([]any); ok && (key == "containers" || key == "initContainers") {
				for _, c := range list {
					if m, ok := c.(map[string]any); ok {
						*found = append(*found, m)
					}
				}
				continue
			}
			containers(v, found)
		}
	case []any:
		for _, v := range n {
			containers(v, found)
		}
	}
}

var interpolated = regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)

// settingNames is what a container tells its program: its environment, less the variables that
// only feed others through $(NAME), and WasmEdge's --env NAME=VALUE arguments (the module sees
// only those).
func settingNames(c map[string]any) []string {
	var names, values []string
	env, _ := c["env"].([]any)
	for _, e := range env {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		names = append(names, name)
		if v, ok := m["value"].(string); ok {
			values = append(values, v)
		}
	}
	names = slices.DeleteFunc(names, func(name string) bool {
		return slices.ContainsFunc(values, func(v string) bool {
			return slices.ContainsFunc(interpolated.FindAllStringSubmatch(v, -1), func(m []string) bool { return m[1] == name })
		})
	})
	args, _ := c["args"].([]any)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--env" {
			name, _, _ := strings.Cut(args[i+1].(string), "=")
			names = append(names, name)
		}
	}
	return names
}

func imageName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	return ref[strings.LastIndex(ref, "/")+1:]
}

// Every variable a manifest gives one of our programs is a setting that program reads, so a
// renamed or mistyped setting cannot leave a Deployment quietly running on a default.
func TestManifestsSetOnlySettingsTheProgramsRead(t *testing.T) {
	sources := settingsSources(t)
	checked := map[string]int{}
	for _, env := range []string{"MANIFESTS", "CLOUDRUN"} {
		f, err := os.Open(runfile.Path(t, env))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			var found []map[string]any
			containers(doc, &found)
			for _, c := range found {
				ref, _ := c["image"].(string)
				src, ours := sources[imageName(ref)]
				if !ours {
					continue
				}
				for _, name := range settingNames(c) {
					checked[imageName(ref)]++
					reads := regexp.MustCompile(`["']` + regexp.QuoteMeta(name) + `["']|\benv\.` + regexp.QuoteMeta(name) + `\b`)
					if !reads.MatchString(src) {
						meta, _ := doc["metadata"].(map[string]any)
						t.Errorf("%s: %s %v, container %v sets %s, which %s never reads", env, doc["kind"], meta["name"], c["name"], name, imageName(ref))
					}
				}
			}
		}
	}
	for image := range sources {
		if checked[image] == 0 {
			t.Errorf("no manifest gives %s any setting: the check looked at nothing for it", image)
		}
	}
}

// The Cloud Run API reads the ballot as configuration: TALLY_BALLOT names a file of a volume
// mounted from the Secret Manager secret tally-ballot (its newest version), which
// //k8s:cloudrun_deploy writes from proto/ballot.json; no image carries it.
func TestCloudRunAPIReadsTheBallotFromASecret(t *testing.T) {
	api := find(t, render(t, "CLOUDRUN_SRCS", nil), "Service", "tally-api")
	c := container(t, api, "api")
	path := envValue(c, "TALLY_BALLOT")
	if !filepath.IsAbs(path) {
		t.Fatalf("the API's TALLY_BALLOT is %q, want a file path", path)
	}
	volume := ""
	for _, m := range list(c, "volumeMounts") {
		if str(m, "mountPath") == filepath.Dir(path) {
			volume = str(m, "name")
		}
	}
	if volume == "" {
		t.Fatalf("no volume is mounted at %s, the directory of TALLY_BALLOT", filepath.Dir(path))
	}
	for _, v := range list(api, "spec", "template", "spec", "volumes") {
		if str(v, "name") != volume {
			continue
		}
		items := list(v, "secret", "items")
		if str(v, "secret", "secretName") != "tally-ballot" || len(items) != 1 ||
			str(items[0], "key") != "latest" || str(items[0], "path") != filepath.Base(path) {
			t.Errorf("volume %s: %v, want secret tally-ballot's latest version as %s", volume, v, filepath.Base(path))
		}
		return
	}
	t.Errorf("the API mounts volume %s, which its service does not define", volume)
}
