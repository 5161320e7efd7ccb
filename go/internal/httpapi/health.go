package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tally-voting/tally/go/internal/readiness"
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

// NotReadyBody is /readyz's 503 body when the readiness checks say which fail.
type NotReadyBody struct {
	Error  string   `json:"error"`
	Checks []string `json:"checks"`
}

// ReadyCheckTimeout bounds one readiness check.
const ReadyCheckTimeout = 2 * time.Second

// Readyz answers GET /readyz: 200 when check passes, else 503 with Retry-After. The reason (which
// may name hosts and carry driver messages) goes to the request's log line, not to the client;
// a *readiness.NotReady's failing checks are named in the body (NotReadyBody).
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
			var nr *readiness.NotReady
			if errors.As(err, &nr) {
				WriteJSON(w, http.StatusServiceUnavailable, NotReadyBody{
					Error: "not ready: " + strings.Join(nr.Checks, ", "), Checks: nr.Checks,
				})
				return
			}
			WriteError(w, http.StatusServiceUnavailable, "not ready", "")
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
