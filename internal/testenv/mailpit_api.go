package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Reading mailpit's store over its HTTP API: the messages, by recipient,
// and one message whole. JSON shapes taken from live v1.33.1 responses.

// MailpitMessage is one entry of the message summary list.
type MailpitMessage struct {
	ID      string
	Subject string
	From    string   // address only
	To      []string // addresses of the To header only
	Created time.Time
}

// MailpitFull is a fully fetched message.
type MailpitFull struct {
	ID        string
	MessageID string // Message-ID without angle brackets
	Subject   string
	From      string   // address only
	To        []string // addresses of the To header only
	Username  string   // SMTP AUTH username, "" if the client did not authenticate
	Text      string
	HTML      string
	Headers   map[string][]string // raw headers, keys canonicalized by mailpit
}

// Header returns the first value of the named header ("" if absent),
// matching the name case-insensitively.
func (m MailpitFull) Header(name string) string {
	if v := m.Headers[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	for k, v := range m.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Wire formats of mailpit v1.33.1 (GET /api/v1/messages, /api/v1/search,
// /api/v1/message/{ID}). Only the fields used here are declared.
type mpAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

type mpSummaryJSON struct {
	ID       string      `json:"ID"`
	Subject  string      `json:"Subject"`
	From     mpAddress   `json:"From"`
	To       []mpAddress `json:"To"`
	Created  time.Time   `json:"Created"`
	Username string      `json:"Username"`
}

type mpListJSON struct {
	Total         int             `json:"total"`
	MessagesCount int             `json:"messages_count"`
	Messages      []mpSummaryJSON `json:"messages"`
}

type mpMessageJSON struct {
	ID        string      `json:"ID"`
	MessageID string      `json:"MessageID"`
	Subject   string      `json:"Subject"`
	From      mpAddress   `json:"From"`
	To        []mpAddress `json:"To"`
	Username  string      `json:"Username"`
	Text      string      `json:"Text"`
	HTML      string      `json:"HTML"`
}

func addresses(as []mpAddress) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Address)
	}
	return out
}

// api performs an API request and decodes a JSON response into out (if
// non-nil). Any transport error or non-2xx status fails the test.
func (m *Mailpit) api(t testing.TB, method, path string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, m.APIURL+path, nil)
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("mailpit %s %s: reading body: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("mailpit %s %s: %s: %s", method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("mailpit %s %s: decoding %q: %v", method, path, body, err)
		}
	}
}

// DeleteAll removes every stored message.
func (m *Mailpit) DeleteAll(t testing.TB) {
	t.Helper()
	m.api(t, http.MethodDelete, "/api/v1/messages", nil)
}

// Messages returns the stored messages, newest first (first 500).
func (m *Mailpit) Messages(t testing.TB) []MailpitMessage {
	t.Helper()
	var l mpListJSON
	m.api(t, http.MethodGet, "/api/v1/messages?limit=500", &l)
	return summaries(l.Messages)
}

func summaries(in []mpSummaryJSON) []MailpitMessage {
	out := make([]MailpitMessage, 0, len(in))
	for _, s := range in {
		out = append(out, MailpitMessage{
			ID:      s.ID,
			Subject: s.Subject,
			From:    s.From.Address,
			To:      addresses(s.To),
			Created: s.Created,
		})
	}
	return out
}

// MessagesTo returns messages whose To header contains exactly addr
// (case-insensitive), newest first. mailpit's to: search is a substring
// match ("bob@x" also finds "jimbob@x") so results are filtered here.
// Envelope-only recipients show up as Bcc and are not matched.
func (m *Mailpit) MessagesTo(t testing.TB, addr string) []MailpitMessage {
	t.Helper()
	q := url.Values{
		"query": {fmt.Sprintf("to:%q", addr)},
		"limit": {"500"},
	}
	var l mpListJSON
	m.api(t, http.MethodGet, "/api/v1/search?"+q.Encode(), &l)
	var out []MailpitMessage
	for _, s := range summaries(l.Messages) {
		for _, to := range s.To {
			if strings.EqualFold(to, addr) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Count returns how many stored messages are addressed (To) exactly to addr.
func (m *Mailpit) Count(t testing.TB, to string) int {
	t.Helper()
	return len(m.MessagesTo(t, to))
}

// WaitFor polls until a message addressed (To) to the given address exists,
// then returns the newest such message in full. It fails the test after
// timeout. Delivery is asynchronous from the sender's point of view, hence
// polling rather than a single lookup.
func (m *Mailpit) WaitFor(t testing.TB, to string, timeout time.Duration) MailpitFull {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if msgs := m.MessagesTo(t, to); len(msgs) > 0 {
			newest := msgs[0] // API order is newest first; Created breaks ties safely
			for _, s := range msgs[1:] {
				if s.Created.After(newest.Created) {
					newest = s
				}
			}
			return m.Fetch(t, newest.ID)
		}
		if time.Now().After(deadline) {
			var have []string
			for _, s := range m.Messages(t) {
				have = append(have, fmt.Sprintf("%v %q", s.To, s.Subject))
			}
			t.Fatalf("mailpit: no message to %q within %v; stored: %v", to, timeout, have)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Fetch returns one message with its raw headers.
func (m *Mailpit) Fetch(t testing.TB, id string) MailpitFull {
	t.Helper()
	var msg mpMessageJSON
	m.api(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(id), &msg)
	var hdr map[string][]string
	m.api(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(id)+"/headers", &hdr)
	return MailpitFull{
		ID:        msg.ID,
		MessageID: msg.MessageID,
		Subject:   msg.Subject,
		From:      msg.From.Address,
		To:        addresses(msg.To),
		Username:  msg.Username,
		Text:      msg.Text,
		HTML:      msg.HTML,
		Headers:   hdr,
	}
}
