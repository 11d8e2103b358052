package emailotp

import (
	"io"
	"mime"
	"net/http"
	"net/url"
)

// Paths of the endpoints resource servers and clients call besides the
// token endpoint, under the issuer path (as Ubisecure SSO places them).
const (
	revokeSuffix     = "/oauth2/revocation"
	introspectSuffix = "/oauth2/introspection"
)

// readClientRequest reads a client-authenticated form POST, as RFC 7009 and
// RFC 7662 require: application/x-www-form-urlencoded, at most maxBodyBytes,
// the client authenticated as at the token endpoint. It returns the form and
// the client, or the error to answer.
func (h *Handler) readClientRequest(w http.ResponseWriter, r *http.Request) (url.Values, *Client, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, nil, &oauthError{status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "use POST"}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, nil, errInvalidRequest("request body could not be read")
	}
	if len(buf) > maxBodyBytes {
		return nil, nil, errInvalidRequest("request body larger than %d bytes", maxBodyBytes)
	}
	form, err := url.ParseQuery(string(buf))
	if err != nil {
		return nil, nil, errInvalidRequest("request body is not a valid form")
	}
	c, oerr := h.authenticateRequest(r, form)
	if oerr != nil {
		return nil, nil, oerr
	}
	if form.Get("token") == "" {
		return nil, nil, errInvalidRequest("token is required")
	}
	return form, c, nil
}
