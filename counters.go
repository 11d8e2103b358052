package emailotp

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// counters are fixed-window counters keyed by scope and key, in memory, and
// with a storage shared with the other instances (limitStore).
//
// Sharing works by claims. A key far from its limit gets a reservation: this
// instance publishes a claim of its count plus a share of the headroom, and
// admits that many events with no storage I/O until the reservation ends
// (reserveFor). A key without a usable reservation, which is every key near
// its limit, is coordinated: the instance publishes its claim for one more
// event, then reads every other instance's claim, and admits only if the
// sum is within the limit (else it takes its claim back). Since each
// instance publishes before it reads, of two racing instances the later
// reader sees the other's claim: the sum of what all instances admit stays
// within the limit while the storage answers.
type counters struct {
	mu      sync.Mutex
	windows // guarded by mu

	store   *limitStore // nil until a storage is set: this instance counts alone
	stripes [64]sync.Mutex
	seed    maphash.Seed
}

func newCounters(max int) *counters {
	return &counters{windows: windows{m: make(map[string]*window), max: max}, seed: maphash.MakeSeed()}
}

func (c *counters) setMax(n int) {
	c.mu.Lock()
	c.max = n
	if c.store != nil {
		c.store.mu.Lock()
		c.store.maxKeys = n
		c.store.mu.Unlock()
	}
	c.mu.Unlock()
}

// useStorage shares the counts through st from now on.
func (c *counters) useStorage(st certmagic.Storage, logger *zap.Logger) {
	c.mu.Lock()
	if c.store == nil {
		c.store = newLimitStore(c.max, logger)
	}
	s := c.store
	c.mu.Unlock()
	s.use(st, logger)
}

// take checks every limit, then counts one event on each if all allow it.
// It returns the refusing scope with how long until its window ends.
func (c *counters) take(checks []check) (string, time.Duration) {
	t := now()
	c.mu.Lock()
	for _, ch := range checks {
		if ch.limit.Count < 0 {
			continue
		}
		n, wait := c.seen(ch.key, ch.limit, t)
		if n >= ch.limit.Count && (c.store == nil || t.UnixNano()-c.m[ch.key].readAt < int64(refuseFresh)) {
			c.mu.Unlock()
			return ch.scope, wait
		}
	}
	var need []check
	var buf [4]*window
	counted := buf[:0] // counted here, taken back if a later key refuses
	for _, ch := range checks {
		if ch.limit.Count < 0 {
			continue
		}
		w, ok := c.open(ch, t)
		if !ok {
			c.undo(counted)
			c.mu.Unlock()
			return ch.scope, c.nextFree.Sub(t)
		}
		switch {
		case c.store == nil:
			if w.count >= ch.limit.Count {
				// only past a stale refusal check, which the store-less path has not
				c.undo(counted)
				c.mu.Unlock()
				return ch.scope, w.firstEnd(t, time.Duration(ch.limit.Window)).Sub(t)
			}
			w.count++
			counted = append(counted, w)
		case w.reserved > 0 && t.UnixNano() < w.until:
			w.count++
			w.reserved--
			counted = append(counted, w)
		default:
			need = append(need, ch)
		}
	}
	c.mu.Unlock()
	if len(need) == 0 {
		return "", 0
	}
	scope, wait := c.coordinate(need, t, false)
	if scope != "" {
		c.mu.Lock()
		c.undo(counted)
		c.mu.Unlock()
	}
	return scope, wait
}

// undo takes back the events take counted before a later key refused.
// The caller holds c.mu.
func (c *counters) undo(counted []*window) {
	for _, w := range counted {
		w.count--
		if c.store != nil {
			w.reserved++
		}
	}
}

// record counts one event on each key whatever the limits, shared with the
// other instances at once (the failed authentications). The event counts
// here before the storage I/O starts, so the checks that run meanwhile
// (authAllowed, without I/O) see it.
func (c *counters) record(checks []check) {
	t := now()
	c.mu.Lock()
	var active []check
	var sharing []*window
	for _, ch := range checks {
		if ch.limit.Count < 0 {
			continue
		}
		w, ok := c.open(ch, t)
		if !ok {
			continue // full of exhausted windows: nothing more to learn
		}
		w.count++
		if c.store != nil {
			w.sharing++
			active = append(active, ch)
			sharing = append(sharing, w)
		}
	}
	c.mu.Unlock()
	if len(active) > 0 {
		c.coordinate(active, t, true)
		c.mu.Lock()
		for _, w := range sharing {
			w.sharing--
		}
		c.mu.Unlock()
	}
}

// waitShared waits, if an event of key is being shared, until its publish
// and read are done, so that a check made after it counts the other
// instances' events as read then. The caller holds c.mu, which is released
// while waiting.
func (c *counters) waitShared(key string) {
	if w, ok := c.m[key]; !ok || w.sharing == 0 {
		return
	}
	c.mu.Unlock()
	c.lockStripes([]check{{key: key}})()
	c.mu.Lock()
}

// coordinate admits one event on every key in need through the storage:
// publish this instance's claim, read the others', and keep the claim only
// if every key stays within its limit (force: always keep it). It holds the
// keys' stripes so that one instance has one claim in flight per key. If
// the storage fails, the instance decides on the counts it last read.
func (c *counters) coordinate(need []check, t time.Time, force bool) (string, time.Duration) {
	unlock := c.lockStripes(need)
	defer unlock()
	s := c.store
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()

	type claim struct {
		w     *window
		e     sharedEntry
		win   time.Duration
		local bool // served by a reservation granted while waiting for the stripe
	}
	claims := make([]claim, len(need))
	c.mu.Lock()
	for i, ch := range need {
		w, ok := c.open(ch, t)
		if !ok {
			c.mu.Unlock()
			return ch.scope, c.nextFree.Sub(t)
		}
		win := time.Duration(ch.limit.Window)
		counted := w.count // force: record counted the event already
		if force && counted == 0 {
			counted = 1 // the window ended since: the event opens the new one
			w.count = 1
		}
		if !force {
			counted++
		}
		if !force && w.reserved > 0 && t.UnixNano() < w.until {
			claims[i] = claim{w: w, win: win, local: true}
			continue
		}
		if !force && t.UnixNano()-w.readAt < int64(refuseFresh) && w.count+1+w.othersAt(t, win) > ch.limit.Count {
			// read while this request waited for the stripe: refused already
			c.mu.Unlock()
			return ch.scope, w.firstEnd(t, win).Sub(t)
		}
		res := 0
		if !force {
			res = max(0, (ch.limit.Count-w.count-1-w.othersAt(t, win))/reserveShare)
		}
		claims[i] = claim{w: w, win: win, e: sharedEntry{
			Start: w.start.UnixMilli(), Count: counted, Claim: counted + res,
			Until: t.Add(reserveFor).UnixMilli(),
		}}
	}
	c.mu.Unlock()

	var err error
	read := make([][]sharedEntry, len(need))
	for i, ch := range need {
		if claims[i].local {
			continue
		}
		if err = s.publish(ctx, ch.key, claims[i].e, claims[i].w.start.Add(claims[i].win)); err != nil {
			break
		}
	}
	for i, ch := range need {
		if err != nil {
			break
		}
		if !claims[i].local {
			read[i], err = s.others(ctx, ch.key)
		}
	}
	if err != nil {
		s.warn("rate limits: the shared counts could not be reached; counting on what this instance knows", err)
	}

	c.mu.Lock()
	refused, wait := "", time.Duration(0)
	for i, ch := range need {
		cl := claims[i]
		if cl.local {
			continue
		}
		if err == nil {
			cl.w.readAt = t.UnixNano()
			cl.w.others = cl.w.others[:0]
			for _, e := range read[i] {
				r := remote{start: time.UnixMilli(e.Start), until: time.UnixMilli(e.Until), count: e.Count, claim: e.Claim}
				if t.Before(r.start.Add(cl.win)) {
					cl.w.others = append(cl.w.others, r)
				}
			}
		}
		if !force && refused == "" && cl.e.Count+cl.w.othersAt(t, cl.win) > ch.limit.Count {
			refused, wait = ch.scope, cl.w.firstEnd(t, cl.win).Sub(t)
		}
	}
	var republish []int
	for i := range need {
		cl := &claims[i]
		switch {
		case cl.local && refused == "":
			cl.w.count++
			cl.w.reserved--
		case cl.local:
		case refused != "":
			cl.w.reserved = 0
			republish = append(republish, i)
		default:
			if !force {
				cl.w.count++
			}
			c.m[need[i].key] = cl.w // back, if it was evicted during the I/O
			res := cl.e.Claim - cl.e.Count
			if room := need[i].limit.Count - cl.w.count - cl.w.othersAt(t, cl.win); res > room {
				res = max(0, room)
				republish = append(republish, i)
			}
			cl.w.reserved, cl.w.until = res, time.UnixMilli(cl.e.Until).UnixNano()
			if err != nil {
				cl.w.reserved = 0
			}
		}
	}
	// What to write back: after a refusal the claim falls back to the count
	// (or goes, if nothing was counted); a reservation cut to fit is
	// republished smaller. Both only lower a claim, so no second read.
	type write struct {
		key string
		e   sharedEntry
		end time.Time
		del bool
	}
	var writes []write
	for _, i := range republish {
		cl := claims[i]
		e := sharedEntry{Start: cl.w.start.UnixMilli(), Count: cl.w.count, Claim: cl.w.count + cl.w.reserved, Until: cl.e.Until}
		writes = append(writes, write{need[i].key, e, cl.w.start.Add(cl.win), cl.w.count == 0})
	}
	c.mu.Unlock()
	if err == nil {
		for _, wr := range writes {
			var werr error
			if wr.del {
				werr = s.unpublish(ctx, wr.key)
			} else {
				werr = s.publish(ctx, wr.key, wr.e, wr.end)
			}
			if werr != nil {
				s.warn("rate limits: taking back a claim failed", werr)
			}
		}
	}
	if s != nil {
		s.longest.Store(int64(c.longestWindow()))
	}
	return refused, wait
}

func (c *counters) longestWindow() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.longest
}

// lockStripes locks the stripes of the checks' keys in order and returns
// the unlock.
func (c *counters) lockStripes(checks []check) func() {
	idx := make([]int, 0, len(checks))
	for _, ch := range checks {
		i := int(maphash.String(c.seed, ch.key) % uint64(len(c.stripes)))
		if !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		c.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			c.stripes[i].Unlock()
		}
	}
}

// Destruct stops the sweeper of the shared counts.
func (c *counters) Destruct() error {
	if c.store != nil {
		c.store.close()
	}
	return nil
}
