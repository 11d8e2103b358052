package emailotp

import "time"

// windows are one instance's windows by key, bounded in number (makeRoom).
// Eviction: ended windows go first, then live ones below their limit; when
// every window is exhausted a new key is refused, so a flood cannot buy an
// address a fresh allowance.
type windows struct {
	m        map[string]*window
	max      int
	longest  time.Duration // the longest window counted: the sweep's horizon
	sweepAt  time.Time
	nextFree time.Time // when full of exhausted windows: when the first ends
	fullTill time.Time // until then a new key finds no room without a scan
}

// window is opened by its first event and lasts as long as the limit now in
// force says, so a reload that changes a limit's window changes the open
// windows too: an operator who shortens it frees a locked-out address at
// once, and Retry-After never exceeds the configured window.
type window struct {
	start    time.Time
	count    int      // events admitted here in this window
	limit    int      // the count in force at the last event (for eviction)
	reserved int      // events this instance may still admit without the storage
	until    int64    // end of the reservation, unix ns
	readAt   int64    // when others was read, unix ns
	sharing  int      // recorded events whose publish and read are under way
	others   []remote // the other instances' windows, as last read
}

// remote is another instance's window of a key, as last read.
type remote struct {
	start, until time.Time
	count, claim int
}

const (
	// reserveFor is how long a reservation lasts; an unused one holds back
	// the other instances at most this long plus reserveGrace.
	reserveFor = time.Second
	// reserveGrace covers the clock skew between instances: others count a
	// claim this long past its end.
	reserveGrace = time.Second
	// reserveShare is the part of the headroom one reservation takes.
	reserveShare = 16
	// refuseFresh is how long a refusal may rest on the others' counts as
	// read: two instances that took back racing claims may each still
	// count the other's, so past this a refused key is read again.
	refuseFresh = time.Second
)

// othersAt is the other instances' count in their windows live at t: their
// claim while it holds, else their count.
func (w *window) othersAt(t time.Time, win time.Duration) int {
	n := 0
	for _, r := range w.others {
		if !t.Before(r.start.Add(win)) {
			continue
		}
		if t.Before(r.until.Add(reserveGrace)) {
			n += r.claim
		} else {
			n += r.count
		}
	}
	return n
}

// firstEnd is when the first live window counted for the key ends: the
// soonest some of the limit frees up.
func (w *window) firstEnd(t time.Time, win time.Duration) time.Time {
	end := w.start.Add(win)
	if w.count == 0 || !t.Before(end) {
		end = t.Add(win)
	}
	for _, r := range w.others {
		if e := r.start.Add(win); t.Before(e) && e.Before(end) {
			end = e
		}
	}
	return end
}

// seen is the count of key at t over all instances, as this one knows it,
// and the wait until its first window ends. The caller holds the
// counters' mu.
func (c *windows) seen(key string, l Limit, t time.Time) (int, time.Duration) {
	w, ok := c.m[key]
	if !ok {
		return 0, 0
	}
	win := time.Duration(l.Window)
	n := w.othersAt(t, win)
	if t.Before(w.start.Add(win)) {
		n += w.count
	}
	return n, w.firstEnd(t, win).Sub(t)
}

// open returns the live window of the check's key, opening a new one if
// there is none or it ended; false when there is no room (makeRoom).
// The caller holds the counters' mu.
func (c *windows) open(ch check, t time.Time) (*window, bool) {
	win := time.Duration(ch.limit.Window)
	c.longest = max(c.longest, win)
	w, ok := c.m[ch.key]
	if !ok {
		if !c.makeRoom(t) {
			return nil, false
		}
		w = &window{start: t}
		c.m[ch.key] = w
	} else if !t.Before(w.start.Add(win)) {
		w.start, w.count, w.reserved, w.until = t, 0, 0, 0
	}
	w.limit = ch.limit.Count
	return w, true
}

// makeRoom keeps the map under its bound and reports whether a new key fits.
// Windows older than the longest window counted are expired whatever their
// limit; they are swept at most once a second, or at once when the map is
// full. If it is still full, about 1% of the live windows below their limit
// go, in map order, so that a flood of distinct keys costs amortized O(1)
// per key instead of a scan per insert. An exhausted window is never
// dropped before it ends: when every window is exhausted, there is no room.
func (c *windows) makeRoom(t time.Time) bool {
	if len(c.m) < c.max && t.Before(c.sweepAt) {
		return true
	}
	if len(c.m) >= c.max && t.Before(c.fullTill) {
		return false
	}
	c.nextFree = t.Add(c.longest)
	for k, w := range c.m {
		end := w.start.Add(c.longest)
		if !t.Before(end) {
			delete(c.m, k)
		} else if end.Before(c.nextFree) {
			c.nextFree = end
		}
	}
	c.sweepAt = t.Add(time.Second)
	if len(c.m) < c.max {
		return true
	}
	drop := c.max/100 + 1
	for k, w := range c.m {
		if drop == 0 {
			break
		}
		if w.count+w.othersAt(t, c.longest) < w.limit {
			delete(c.m, k)
			drop--
		}
	}
	if len(c.m) < c.max {
		return true
	}
	c.fullTill = t.Add(time.Second)
	if c.nextFree.Before(c.fullTill) {
		c.fullTill = c.nextFree
	}
	return false
}
