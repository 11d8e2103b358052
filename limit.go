package emailotp

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Limit is a count per window. A negative count disables the limit.
type Limit struct {
	// Count of events allowed per window, negative for no limit. Required.
	Count int `json:"count"`
	// Window is the length of the window. Required unless Count is negative.
	Window caddy.Duration `json:"window"`
}

func (l *Limit) String() string {
	return fmt.Sprintf("%d per %s", l.Count, time.Duration(l.Window))
}

type check struct {
	scope string
	key   string
	limit Limit
}
