package envconf

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	env := map[string]string{
		"ADDR": " :8080 ", "LIST": "a:1, ,b:2", "WAIT": "5ms", "LEVEL": "warn",
		"BAD_WAIT": "soon", "NEG_WAIT": "-1s", "BAD_LEVEL": "loud", "ON": " On", "OFF": "0", "BAD_BOOL": "maybe",
	}
	r := Reader{Get: func(k string) string { return env[k] }}
	if got := r.String("ADDR", ":1"); got != ":8080" {
		t.Errorf("String = %q", got)
	}
	if got := r.String("UNSET", ":1"); got != ":1" {
		t.Errorf("String default = %q", got)
	}
	if got := r.List("LIST", nil); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Errorf("List = %q", got)
	}
	if got := r.List("UNSET", []string{"d"}); !slices.Equal(got, []string{"d"}) {
		t.Errorf("List default = %q", got)
	}
	if got := r.Duration("WAIT", time.Second); got != 5*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
	if got := r.LogLevel("LEVEL", slog.LevelInfo); got != slog.LevelWarn {
		t.Errorf("LogLevel = %v", got)
	}
	if !r.Bool("ON", false) || r.Bool("OFF", true) || !r.Bool("UNSET", true) {
		t.Error("Bool misread ON, OFF or UNSET")
	}
	if r.Err() != nil {
		t.Fatalf("Err = %v before any bad variable", r.Err())
	}
	r.Bool("BAD_BOOL", false)
	r.Duration("BAD_WAIT", time.Second)
	r.Duration("NEG_WAIT", time.Second)
	r.LogLevel("BAD_LEVEL", slog.LevelInfo)
	err := r.Err()
	for _, name := range []string{"BAD_BOOL", "BAD_WAIT", "NEG_WAIT", "BAD_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Err = %v, want it to name %s", err, name)
		}
	}
}
