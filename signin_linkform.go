package emailotp

import "net/http"

// linkForm answers GET <path>/link, the mailed link: it consumes nothing.
func (si *signIn) linkForm(w http.ResponseWriter, r *http.Request) {
	if si.cfg.MailLink == "" {
		si.renderStatus(w, r, http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	p := si.newPage(w, r, safeReturn(q.Get(fieldReturn)))
	si.linkAnswer(w, r, p, q.Get(linkReference), q.Get(linkCode), false)
}

// linkSignIn answers the link page's button: in the browser that asked for
// the code it spends the reference on the code, as the code form does.
func (si *signIn) linkSignIn(w http.ResponseWriter, r *http.Request) {
	if si.cfg.MailLink == "" {
		si.renderStatus(w, r, http.StatusNotFound)
		return
	}
	form, p, ok := si.readPost(w, r)
	if !ok {
		return
	}
	si.linkAnswer(w, r, p, first(form, linkReference), first(form, linkCode), true)
}

// linkAnswer shows the button (GET) or signs in (POST) in the bound
// browser, and the code to type in any other; a link that is not one
// asks for a new code.
func (si *signIn) linkAnswer(w http.ResponseWriter, r *http.Request, p *page, ref, code string, post bool) {
	ch := si.core.peek(ref, si.cfg.client)
	if ch == nil || !validCode(code) {
		p.View, p.Error = viewFailed, p.T.ErrStale
		si.render(w, http.StatusBadRequest, p)
		return
	}
	if !si.boundHere(r, ch) {
		p.View, p.Code = viewLinkCode, code
		status := http.StatusOK
		if post {
			status = http.StatusForbidden
		}
		si.render(w, status, p)
		return
	}
	if post {
		si.verifyCode(w, r, p, ref, code)
		return
	}
	p.View, p.Email, p.Reference, p.Code = viewLink, ch.Address, ref, code
	si.render(w, http.StatusOK, p)
}
