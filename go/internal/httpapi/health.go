package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tally-voting/tally/go/internal/reqlog"
)

// Healthz answers GET /healthz: the process is alive and serving HTTP.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Allow(w, r, http.MethodGet, http.MethodHead) {
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	})
}

// ReadyCheckTimeout bounds one readiness check.
const ReadyCheckTimeout = 2 * time.Second

// Readyz answers GET /readyz: 200 when check passes, else 503 with Retry-After. The reason (which
// may name hosts and carry driver messages) goes to the request's log line, not to the client.
func Readyz(check func(ctx context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		// Not cancelled with the request (net/http cancels it when the client half-closes): the
		// check's own timeout bounds it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ReadyCheckTimeout)
		defer cancel()
		if err := check(ctx); err != nil {
			reqlog.Add(r.Context(), slog.String("not_ready", err.Error()))
			w.Header().Set("Retry-After", "1")
			WriteError(w, http.StatusServiceUnavailable, "not ready", "")
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
