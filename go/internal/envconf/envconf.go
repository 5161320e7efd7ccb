// Package envconf reads a service's settings from environment variables, with defaults, and
// reports every malformed one at once so a service stops at start naming them.
package envconf

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables through Get (os.Getenv in a main, a map in tests).
type Reader struct {
	Get  func(string) string
	errs []error
}

// String is the variable's value, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.Get(name)); v != "" {
		return v
	}
	return def
}

// List is a comma-separated value, blanks dropped, or def.
func (r *Reader) List(name string, def []string) []string {
	var out []string
	for _, v := range strings.Split(r.Get(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}

// Duration is a positive Go duration ("5ms", "2s"), or def.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.Get(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a positive duration such as 5ms or 2s", name, v))
		return def
	}
	return d
}

// Int is a decimal integer from lo to hi, or def.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.Get(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want an integer from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

// Float is a decimal number from lo to hi, or def.
func (r *Reader) Float(name string, def, lo, hi float64) float64 {
	v := strings.TrimSpace(r.Get(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < lo || n > hi {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a number from %g to %g", name, v, lo, hi))
		return def
	}
	return n
}

// LogLevel is debug, info, warn or error, or def.
func (r *Reader) LogLevel(name string, def slog.Level) slog.Level {
	v := strings.TrimSpace(r.Get(name))
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want debug, info, warn or error", name, v))
		return def
	}
	return l
}

// Bool is true for 1, true, yes or on and false for 0, false, no or off (any case), or def.
func (r *Reader) Bool(name string, def bool) bool {
	switch v := strings.ToLower(strings.TrimSpace(r.Get(name))); v {
	case "":
		return def
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	default:
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want true or false", name, v))
		return def
	}
}

// Err reports every malformed variable read so far.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
