package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// PprofEnv names the variable that turns WithPprof on in every service (off by default).
const PprofEnv = "DEBUG_PPROF"

// WithPprof serves Go's profiles (net/http/pprof) under /debug/pprof/ and everything else with
// next. Services mount it only when DEBUG_PPROF is true: it is for benchmarks and debugging
// (go/bench takes CPU profiles through it), never on by default, since anyone who can reach the
// port could read the process's state and load its CPU.
func WithPprof(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			mux.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
