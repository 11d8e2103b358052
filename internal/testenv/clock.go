package testenv

import (
	"sync/atomic"
	"time"
)

// Clock is a clock the test moves, safe to read from any goroutine. Its Now
// stands in for time.Now wherever the code under test takes a clock.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock stopped at t.
func NewClock(t time.Time) *Clock {
	c := new(Clock)
	c.ns.Store(t.UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set moves the clock to t, forward or back.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
