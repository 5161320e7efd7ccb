package httpapi

import (
	"context"
	"net/http"
	"time"
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

// Readyz answers GET /readyz: 200 when check passes, else 503 with Retry-After and the reason.
func Readyz(check func(ctx context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), ReadyCheckTimeout)
		defer cancel()
		if err := check(ctx); err != nil {
			w.Header().Set("Retry-After", "1")
			WriteError(w, http.StatusServiceUnavailable, "not ready: "+err.Error(), "")
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
