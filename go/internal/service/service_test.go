package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type settings struct{ level slog.Level }

func fromEnv(getenv func(string) string) (settings, error) {
	switch getenv("LOG_LEVEL") {
	case "debug":
		return settings{slog.LevelDebug}, nil
	case "", "info":
		return settings{slog.LevelInfo}, nil
	}
	return settings{}, errors.New("LOG_LEVEL: want debug or info")
}

func levelOf(s settings) slog.Level { return s.level }

func TestRunExitStatuses(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for _, tt := range []struct {
		name    string
		env     map[string]string
		runErr  error
		want    int
		stdout  string // a substring of the log
		stderr  string
		debugOK bool
	}{
		{name: "clean stop", env: map[string]string{"LOG_LEVEL": "debug"}, want: 0, debugOK: true},
		{name: "bad settings", env: map[string]string{"LOG_LEVEL": "loud"}, want: ExitBadSettings, stderr: "svc: bad settings: LOG_LEVEL"},
		{name: "failed run", runErr: errors.New("kafka gone"), want: ExitFailed, stdout: `"error":"kafka gone"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ran := false
			got := Run(context.Background(), "svc", env(tt.env), &stdout, &stderr, fromEnv, levelOf,
				func(_ context.Context, _ settings, log *slog.Logger) error {
					ran = true
					log.Debug("debug line")
					return tt.runErr
				})
			if got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if ran == (tt.want == ExitBadSettings) {
				t.Errorf("run called: %v with status %d", ran, got)
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
			}
			if strings.Contains(stdout.String(), "debug line") != tt.debugOK {
				t.Errorf("debug line logged: %v, want %v (stdout %q)", !tt.debugOK, tt.debugOK, stdout.String())
			}
			for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Errorf("not a JSON line: %q", line)
				}
			}
		})
	}
}
