// The RFC 6749 error answer and the JSON writers every endpoint uses.

package emailotp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status      int
	Code        string         `json:"error"`
	Description string         `json:"error_description,omitempty"`
	Challenge   *challengeJSON `json:"x_globalsign_iam_challenge,omitempty"`
	retryAfter  time.Duration
	basic       bool // answer WWW-Authenticate: Basic
}

type challengeJSON struct {
	Reference string `json:"reference"`
}

func errInvalidRequest(format string, a ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_request", Description: fmt.Sprintf(format, a...)}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_grant", Description: desc}
}

func errUnavailable(desc string, retry time.Duration) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: desc, retryAfter: retry}
}

func writeError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.basic {
		h.Set("WWW-Authenticate", `Basic realm="email_otp", charset="UTF-8"`)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.status, e)
}

func writeNoStore(w http.ResponseWriter, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
