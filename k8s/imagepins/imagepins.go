// Package imagepins reads k8s/image-pins.txt: the digests of the third-party images Tally's
// manifests and Strimzi's install name by version tag, one "<image>:<tag> sha256:<64 hex>" line
// each, optionally followed by "# where the digest was seen". The render and the Strimzi
// install both pin from it.
package imagepins

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

var line = regexp.MustCompile(`^(\S+:[^\s:/@]+) (sha256:[0-9a-f]{64})(?:\s+#.*)?$`)

// Read returns the pins of file as image:tag -> sha256:<hex>; a malformed or repeated line is an
// error naming it.
func Read(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("image pins: %w", err)
	}
	pins := map[string]string{}
	for i, text := range strings.Split(string(data), "\n") {
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		m := line.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("image pins %s:%d: want \"<image>:<tag> sha256:<64 hex>\", got %q", file, i+1, text)
		}
		if _, dup := pins[m[1]]; dup {
			return nil, fmt.Errorf("image pins %s:%d: %s is pinned twice", file, i+1, m[1])
		}
		pins[m[1]] = m[2]
	}
	return pins, nil
}

var digestRef = regexp.MustCompile(`^[^@\s]+@sha256:[0-9a-f]{64}$`)

// ByDigest says whether ref names its image by a sha256 digest (with a tag or without): the one
// form the rendered manifests may use for any image.
func ByDigest(ref string) bool { return digestRef.MatchString(ref) }
