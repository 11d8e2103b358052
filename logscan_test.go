package emailotp

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"
)

// pluginLogger is the zap logger name of the handler's lines.
const pluginLogger = "http.handlers.email_otp"

// logMark is a position in a test server's log file, so a test reads only
// what one request wrote.
type logMark int64

func markLog(t testing.TB, tc *testCaddy) logMark {
	t.Helper()
	fi, err := os.Stat(tc.LogFile)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return logMark(fi.Size())
}

// logSince returns the log text written after m.
func logSince(t testing.TB, tc *testCaddy, m logMark) string {
	t.Helper()
	s := tc.Logs(t)
	if int(m) > len(s) {
		t.Fatalf("log file shrank: mark %d, size %d", m, len(s))
	}
	return s[m:]
}

// logEntries decodes the JSON log lines of text; undecodable lines fail the
// test (every line of a json-format log is an object).
func logEntries(t testing.TB, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// waitLogEntry polls the log written after m for a plugin line with message
// msg whose string fields include every pair of want, and returns it. The
// file logger writes synchronously, so the poll only covers a slow disk.
func waitLogEntry(t testing.TB, tc *testCaddy, m logMark, msg string, want map[string]string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, e := range logEntries(t, logSince(t, tc, m)) {
			if e["logger"] != pluginLogger || e["msg"] != msg {
				continue
			}
			ok := true
			for k, v := range want {
				if s, _ := e[k].(string); s != v {
					ok = false
				}
			}
			if ok {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line with %v; log since mark:\n%s", msg, want, logSince(t, tc, m))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertNoDigitRuns fails if a string field of a plugin log line holds a run
// of six or more ASCII or Unicode digits: no code (6–12 digits) may be
// logged. The challenge field is a hex id prefix and is checked for its shape
// instead.
func assertNoDigitRuns(t testing.TB, entries []map[string]any) {
	t.Helper()
	for _, e := range entries {
		if e["logger"] != pluginLogger {
			continue
		}
		for k, v := range e {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if k == "challenge" {
				if s != "" && !isHexID(s) {
					t.Errorf("challenge field %q is not an 8-hex-digit id prefix", s)
				}
				continue
			}
			if r := longestDigitRun(s); r >= 6 {
				t.Errorf("log field %s=%q has a run of %d digits (a code?)", k, s, r)
			}
		}
	}
}

func isHexID(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func longestDigitRun(s string) int {
	best, run := 0, 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}
