// Package service is what every Go service of Tally does the same way in main: read its settings
// from the environment, log JSON lines on stdout at the configured level, run until SIGTERM or
// Ctrl-C, and exit with the status operators and the stack rely on.
package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses of a service.
const (
	ExitFailed      = 1 // run returned an error
	ExitBadSettings = 2 // the settings could not be read; stderr names each bad variable
)

// Main runs the service called name and exits with its status: it reads the settings with
// configFromEnv, logs at level(settings), and calls run with a context that ends on SIGTERM or
// Ctrl-C, after which run is expected to stop gracefully and return nil.
func Main[C any](name string, configFromEnv func(getenv func(string) string) (C, error), level func(C) slog.Level,
	run func(ctx context.Context, cfg C, log *slog.Logger) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, name, os.Getenv, os.Stdout, os.Stderr, configFromEnv, level, run)
	stop()
	os.Exit(code)
}

// Run is Main without the process: it returns the exit status instead of exiting.
func Run[C any](ctx context.Context, name string, getenv func(string) string, stdout, stderr io.Writer,
	configFromEnv func(getenv func(string) string) (C, error), level func(C) slog.Level,
	run func(ctx context.Context, cfg C, log *slog.Logger) error) int {
	cfg, err := configFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: bad settings: %v\n", name, err)
		return ExitBadSettings
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level(cfg)}))
	if err := run(ctx, cfg, log); err != nil {
		log.Error(name+" stopped with an error", "error", err.Error())
		return ExitFailed
	}
	return 0
}
