package emailotp

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Request parameters of the smtp-otp grant, as Ubisecure SSO names them.
const (
	paramTitle     = "x_globalsign_iam_otp_title"
	paramBody      = "x_globalsign_iam_otp_body"
	paramReference = "x_globalsign_iam_reference_id"
	paramCode      = "x_globalsign_iam_otp_code"
)

// Descriptions the clients of Ubisecure SSO look for.
const (
	descOTPInvalid = "OTP Invalid"
	descOTPExpired = "OTP Expired"
)

// tokenRequest is a parsed request of this grant.
type tokenRequest struct {
	form   url.Values
	client *Client
}

// get returns a single-valued parameter; duplicates were refused earlier.
func (t *tokenRequest) get(name string) string {
	if v := t.form[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// serveToken answers a POST to the token path if it names this grant and
// reports whether it did; otherwise the body is restored for next.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) bool {
	form, oerr, ours := h.readForm(r)
	if !ours {
		return false
	}
	if oerr == nil {
		var req *tokenRequest
		if req, oerr = h.parseRequest(r, form); oerr == nil {
			if req.form.Has(paramReference) || req.form.Has(paramCode) {
				oerr = h.validate(w, r, req)
			} else {
				oerr = h.initiate(w, r, req)
			}
		}
	}
	if oerr != nil {
		writeError(w, oerr)
	}
	return true
}

// readForm reads at most maxBodyBytes of the body and decides whether the
// request is ours: its grant_type is this grant. The body is always put back,
// unread, for the next handler.
func (h *Handler) readForm(r *http.Request) (url.Values, *oauthError, bool) {
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil {
		return nil, nil, false
	}
	form, perr := url.ParseQuery(string(buf))
	ours := false
	for _, g := range form["grant_type"] {
		if g == h.GrantType {
			ours = true
		}
	}
	if !ours {
		return nil, nil, false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case len(buf) > maxBodyBytes:
		return nil, errInvalidRequest("request body larger than %d bytes", maxBodyBytes), true
	case mt != "application/x-www-form-urlencoded":
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded"), true
	case perr != nil:
		return nil, errInvalidRequest("request body is not a valid form"), true
	}
	return form, nil, true
}

// parseRequest authenticates the client and checks the scope.
func (h *Handler) parseRequest(r *http.Request, form url.Values) (*tokenRequest, *oauthError) {
	c, oerr := h.authenticateRequest(r, form)
	if oerr != nil {
		return nil, oerr
	}
	req := &tokenRequest{form: form, client: c}
	scope := req.get("scope")
	if !hasScope(scope, "openid") {
		return nil, &oauthError{status: http.StatusBadRequest, Code: "invalid_scope", Description: "scope must include openid"}
	}
	return req, nil
}

// authenticateRequest refuses duplicated parameters, checks encoding, and
// authenticates the client (RFC 6749 §2.3.1: Basic or body, never both):
// the one client authentication of the token, revocation and introspection
// endpoints.
func (h *Handler) authenticateRequest(r *http.Request, form url.Values) (*Client, *oauthError) {
	for k, v := range form {
		if len(v) > 1 {
			return nil, errInvalidRequest("parameter %s is repeated", k)
		}
		if !utf8.ValidString(v[0]) || !utf8.ValidString(k) {
			return nil, errInvalidRequest("parameter %s is not UTF-8", k)
		}
	}
	if hasClientAssertion(form) { // private_key_jwt: clientassertion.go
		return h.authenticateAssertionThrottled(r, form)
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	basicID, basicSecret, basic, bad := basicAuth(r)
	switch {
	case bad:
		return nil, &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: "malformed Basic credentials", basic: true}
	case basic && form.Has("client_secret"):
		return nil, errInvalidRequest("client authenticated both by HTTP Basic and in the body")
	case basic && id != "" && id != basicID: // an empty one is absent (RFC 6749 §3.2)
		return nil, errInvalidRequest("client_id differs from the HTTP Basic user")
	case basic:
		id, secret = basicID, basicSecret
	case id == "":
		return nil, &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: "client authentication required", basic: true}
	}
	ip := clientIP(r)
	if wait, ok := h.core.limiter.authAllowed(id, ip); !ok {
		return nil, &oauthError{status: http.StatusTooManyRequests, Code: "slow_down", Description: "too many failed client authentications", retryAfter: wait}
	}
	c, ok := h.authenticate(id, secret)
	if !ok {
		h.core.limiter.authFailed(id, ip)
		// One line per refusal, so brute force shows in the logs; the
		// client id only if it is configured (an unknown one is attacker
		// text), never the secret.
		if ce := h.logger.Check(zapcore.InfoLevel, "client authentication failed"); ce != nil {
			known := "unknown"
			if _, ok := h.clients[id]; ok {
				known = id
			}
			ce.Write(zap.String("client", known))
		}
		return nil, &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: "client authentication failed", basic: basic}
	}
	return c, nil
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if s == want {
			return true
		}
	}
	return false
}

// grantedScope keeps the requested scopes this server knows.
func (h *Handler) grantedScope(scope string) string {
	var out []string
	for _, s := range strings.Fields(scope) {
		for _, k := range h.scopes {
			if s == k && !hasScope(strings.Join(out, " "), s) {
				out = append(out, s)
			}
		}
	}
	return strings.Join(out, " ")
}

// initiate mails a code and answers the first reference of the chain.
func (h *Handler) initiate(w http.ResponseWriter, r *http.Request, req *tokenRequest) *oauthError {
	c := req.client
	username := req.get("username")
	if username == "" {
		return errInvalidRequest("username is required")
	}
	addr, err := parseAddress(username)
	if err != nil {
		return errInvalidRequest("%s", err)
	}
	title, body := req.get(paramTitle), req.get(paramBody)
	if (title != "" || body != "") && c.RequestTemplate == "deny" {
		return &oauthError{status: http.StatusBadRequest, Code: "unauthorized_client", Description: "client may not set the mail title or body"}
	}
	if oerr := checkTitleBody(title, body, req.form); oerr != nil {
		return oerr
	}
	nonce := req.get("nonce")
	if len(nonce) > maxFieldLen {
		return errInvalidRequest("nonce longer than %d bytes", maxFieldLen)
	}
	userIP, oerr := userIP(req)
	if oerr != nil {
		return oerr
	}
	s, err := h.core.send(r.Context(), sendRequest{client: c, issuer: h.issuer(r), addr: addr, username: username, userIP: userIP, nonce: nonce,
		uiLocales: req.get("ui_locales"), title: title, body: body})
	if c.UniformRefusals && refusal(err) {
		s, err = h.core.decoy(s), nil
	}
	if err != nil {
		return sendError(err)
	}
	writeNoStore(w, struct {
		Challenge challengeJSON `json:"x_globalsign_iam_challenge"`
	}{challengeJSON{Reference: s.reference}})
	return nil
}

// checkError is the grant's answer to a check that gave no tokens. Every
// answer about the code carries a challenge, as the seed's "OTP Expired"
// example does: after a wrong code the next link of the chain, after an
// expired code or the last attempt a dead end (otp.go) that answers the
// same error again.
func checkError(res checked, err error) *oauthError {
	var e *oauthError
	switch {
	case errors.Is(err, errBadReference):
		return errInvalidGrant("reference is invalid")
	case errors.Is(err, errWrongClient):
		return errInvalidGrant("reference was issued to another client")
	case errors.Is(err, errDomainRefused):
		return &oauthError{status: http.StatusBadRequest, Code: "unauthorized_client", Description: "client may not verify addresses of this domain"}
	case errors.Is(err, errUsernameMismatch):
		return errInvalidGrant("username does not match the reference")
	case err != nil:
		return errUnavailable("the reference could not be checked", 5*time.Second)
	case res.outcome == outcomeReplayed:
		return errInvalidGrant("reference was already used")
	case res.outcome == outcomeExpired:
		e = errInvalidGrant(descOTPExpired)
	case res.outcome == outcomeInvalid, res.outcome == outcomeExhausted:
		e = errInvalidGrant(descOTPInvalid)
	default:
		return nil
	}
	e.Challenge = &challengeJSON{Reference: res.next}
	return e
}

// sendError is the grant's answer to a failed send.
func sendError(err error) *oauthError {
	var lim *limitedError
	switch {
	case errors.As(err, &lim):
		return &oauthError{status: http.StatusTooManyRequests, Code: "slow_down",
			Description: "rate limit per " + lim.Scope + " reached", retryAfter: lim.RetryAfter}
	case errors.Is(err, errDomainRefused):
		return &oauthError{status: http.StatusBadRequest, Code: "unauthorized_client", Description: "client may not verify addresses of this domain"}
	case errors.Is(err, errMailRender):
		return errUnavailable("the mail could not be rendered", time.Minute)
	case errors.Is(err, errMailRefused):
		return errInvalidRequest("%s", errMailRefused)
	default:
		return errUnavailable("the mail could not be sent; try again later", 30*time.Second)
	}
}

// userIP is the end user's IP passed by a client trusted to pass it; empty
// when unknown. A malformed value is refused rather than ignored, so a
// misconfigured client notices.
func userIP(req *tokenRequest) (string, *oauthError) {
	p := req.client.PassUserIPParam
	if p == "" || !req.form.Has(p) {
		return "", nil
	}
	ip, err := netip.ParseAddr(req.get(p))
	if err != nil {
		return "", errInvalidRequest("%s is not an IP address", p)
	}
	return ipKey(ip), nil
}

// checkTitleBody refuses request-supplied mail text that could break the
// message or lose the code.
func checkTitleBody(title, body string, form url.Values) *oauthError {
	if form.Has(paramTitle) && title == "" {
		return errInvalidRequest("%s is empty", paramTitle)
	}
	if form.Has(paramBody) && body == "" {
		return errInvalidRequest("%s is empty", paramBody)
	}
	if strings.ContainsAny(title, "\r\n") || strings.ContainsFunc(title, isControl) {
		return errInvalidRequest("%s must be one line without control characters", paramTitle)
	}
	if utf8.RuneCountInString(title) > maxTitleLength {
		return errInvalidRequest("%s longer than %d characters", paramTitle, maxTitleLength)
	}
	if body != "" && !strings.Contains(body, codePlaceholder) {
		return errInvalidRequest("%s must contain {0} where the code goes", paramBody)
	}
	if len(body) > maxBodyLength {
		return errInvalidRequest("%s longer than %d bytes", paramBody, maxBodyLength)
	}
	return nil
}

// validate consumes the reference and trades a right code for tokens.
// Parameters are checked first: a request that cannot be an attempt costs
// nothing.
func (h *Handler) validate(w http.ResponseWriter, r *http.Request, req *tokenRequest) *oauthError {
	ref, code := req.get(paramReference), req.get(paramCode)
	if ref == "" {
		return errInvalidRequest("%s is required", paramReference)
	}
	if code == "" {
		return errInvalidRequest("%s is required", paramCode)
	}
	if !validCode(code) {
		return errInvalidRequest("%s must be 6 to 12 digits", paramCode)
	}
	if len(req.get("nonce")) > maxFieldLen {
		return errInvalidRequest("nonce longer than %d bytes", maxFieldLen)
	}
	c := req.client
	iss := h.issuer(r)
	res, err := h.core.check(r.Context(), checkRequest{client: c, issuer: iss, reference: ref, code: code, username: req.get("username")})
	if oerr := checkError(res, err); oerr != nil {
		return oerr
	}
	nonce := req.get("nonce")
	if nonce == "" {
		nonce = res.nonce
	}
	resp, err := h.mint(grantResult{
		issuer:   iss,
		client:   c,
		subject:  res.subject,
		address:  res.address,
		scope:    h.grantedScope(req.get("scope")),
		nonce:    nonce,
		authTime: res.authTime,
	})
	if err != nil {
		h.logger.Error("signing tokens failed", zap.String("client", c.ID), zap.Error(err))
		return errUnavailable("tokens could not be signed", 5*time.Second)
	}
	writeNoStore(w, resp)
	return nil
}
