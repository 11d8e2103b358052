package emailotp

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// serveRevoke answers RFC 7009 revocation. A client may revoke only its own
// access tokens; any other token, invalid, expired or another client's,
// gets the same 200 and changes nothing (RFC 7009 §2.2), so the answer
// tells nothing about the token. The token's jti goes on the revocation
// list until the token expires; token_type_hint is not needed (there is
// one kind of token) and is ignored, as §2.1 allows. A revocation that
// took effect gets an audit line, as the admin API's and sign-out's do.
func (h *Handler) serveRevoke(w http.ResponseWriter, r *http.Request) {
	form, c, oerr := h.readClientRequest(w, r)
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	at, err := h.verifyAccessToken(r, form.Get("token"))
	if err == nil && at.claims["client_id"] != c.ID {
		err = errAudience
	}
	if err == nil && at.std.ID == "" {
		err = errNotOurs
	}
	if err == nil {
		if err := h.revoked.add(r.Context(), revocation{jti: at.std.ID, exp: at.std.Expiry.Time()}); err != nil {
			h.logger.Error("revocation not stored", zap.String("client", c.ID), zap.Error(err))
			writeError(w, errUnavailable("the revocation could not be stored", 5*time.Second))
			return
		}
		h.audit.write(auditRevocation, requestRoute(r), at.addr.String(), "rfc7009", zap.String("client", c.ID))
	}
	h.logTokenCall("revocation", c.ID, err)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}
