package imagepins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func write(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pins.txt")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadTakesPinsAndSkipsComments(t *testing.T) {
	pins, err := Read(write(t, "# pins\n\nredis:8.0.6 "+digest+"  # seen there\nquay.io/x/y:1.2.0-kafka-4.3.1 "+digest+"\n"))
	if err != nil || len(pins) != 2 || pins["redis:8.0.6"] != digest || pins["quay.io/x/y:1.2.0-kafka-4.3.1"] != digest {
		t.Errorf("pins = %v, %v", pins, err)
	}
}

func TestReadRefusesMalformedLines(t *testing.T) {
	for _, text := range []string{
		"redis:8.0.6 sha256:abc\n",
		"redis sha256:" + strings.Repeat("0", 64) + "\n",
		"registry:5000/redis " + digest + "\n",
		"redis:8.0.6 " + digest + "\nredis:8.0.6 " + digest + "\n",
	} {
		if _, err := Read(write(t, text)); err == nil || !strings.Contains(err.Error(), "pins.txt:") {
			t.Errorf("pins %q: %v, want an error naming the line", text, err)
		}
	}
}
