// Package httpapi holds what Tally's HTTP servers share: JSON responses and errors in the shape
// docs/api.md fixes ({"error": ..., "field": ...}), method checks, health endpoints, one log
// line and metrics per request, and graceful serving.
package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// ErrorBody is every error response's body. Field names the request part at fault, when one is.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteError writes an error response; field may be empty.
func WriteError(w http.ResponseWriter, status int, msg, field string) {
	WriteJSON(w, status, ErrorBody{Error: msg, Field: field})
}

// Allow reports whether r's method is one of methods; if not, it writes 405 with an Allow header.
func Allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	allowed := strings.Join(methods, ", ")
	w.Header().Set("Allow", allowed)
	RefuseUnread(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+allowed, "")
	return false
}

// NotFound answers any path a server does not serve.
func NotFound(w http.ResponseWriter, r *http.Request) {
	RefuseUnread(w, http.StatusNotFound, "no such path: "+r.URL.Path, "")
}

// RefuseUnread answers an error before the request's body is read, and closes the connection
// after it: the Wasm producer does the same, so both routes treat requests pipelined behind a
// refused one alike (net/http would otherwise read and drop up to 256 KiB of the body).
func RefuseUnread(w http.ResponseWriter, status int, msg, field string) {
	w.Header().Set("Connection", "close")
	WriteError(w, status, msg, field)
}
