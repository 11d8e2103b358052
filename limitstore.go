package emailotp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// limitStore shares the rate-limit counts of every instance that uses the
// same Caddy storage. Each instance writes only its own entries, under its
// own directory, so no storage lock is ever taken:
//
//	email_otp/limits/<instance>/alive       heartbeat: when, and the longest window
//	email_otp/limits/<instance>/<key hash>  one window of one key: start, count, claim
//
// An instance publishes its entry for a key before it reads the others'
// (coordinate in counters.go): of two instances racing on a key, the one
// that reads last sees the other's event, so a key is never admitted past
// its limit while the storage answers. The instance id is new at each
// process start; the entries of a previous run stay in storage and count as
// another instance's until their windows end, so a restart forgets nothing.
type limitStore struct {
	storage atomic.Pointer[storageRef]
	id      string
	logger  *zap.Logger

	mu        sync.Mutex
	published map[string]time.Time // own entries to delete, by key, with the end of their window
	overflow  bool                 // published was full: scan the own directory instead
	maxKeys   int
	longest   atomic.Int64 // longest window counted, ns: written into the heartbeat
	warnAt    atomic.Int64 // unix ns before which storage errors are not logged again

	stop chan struct{}
	done chan struct{}
}

// storageRef lets the storage be swapped atomically on reload.
type storageRef struct{ certmagic.Storage }

const (
	limitsPrefix = "email_otp/limits"
	aliveName    = "alive"
	// storageTimeout bounds one coordination with the storage; past it the
	// instance decides on what it knows.
	storageTimeout = 3 * time.Second
	// sweepEvery is how often an instance deletes its own ended windows and
	// refreshes its heartbeat.
	sweepEvery = 30 * time.Second
	// deadAfter is how long past its longest window a silent instance's
	// directory stays; then any instance removes it.
	deadAfter = 5 * time.Minute
)

// sharedEntry is one instance's window of one key, as stored.
type sharedEntry struct {
	Start int64 `json:"s"` // window start, unix ms
	Count int   `json:"n"` // events admitted in the window
	Claim int   `json:"c"` // Count plus the events reserved until Until
	Until int64 `json:"u"` // end of the reservation, unix ms
}

type heartbeat struct {
	At      int64 `json:"t"` // unix ms
	Longest int64 `json:"w"` // longest window counted, ms
}

func newLimitStore(maxKeys int, logger *zap.Logger) *limitStore {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &limitStore{
		id:        hex.EncodeToString(b),
		logger:    logger,
		published: make(map[string]time.Time),
		maxKeys:   maxKeys,
	}
}

// use sets the storage in force and starts the sweeper the first time.
func (s *limitStore) use(st certmagic.Storage, logger *zap.Logger) {
	first := s.storage.Swap(&storageRef{st}) == nil
	if logger != nil {
		s.logger = logger
	}
	if first {
		s.writeHeartbeat()
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.run()
	}
}

func (s *limitStore) close() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
}

func (s *limitStore) st() certmagic.Storage {
	if r := s.storage.Load(); r != nil {
		return r.Storage
	}
	return nil
}

// keyFile names a key's entry. The key holds an address or an IP: the
// storage gets a hash of it, not the text.
func keyFile(key string) string {
	sum := sha256.Sum256([]byte("email_otp limit\x00" + key))
	return hex.EncodeToString(sum[:16])
}

func (s *limitStore) ownPath(key string) string { return path.Join(limitsPrefix, s.id, keyFile(key)) }

// publish stores this instance's entry for key.
func (s *limitStore) publish(ctx context.Context, key string, e sharedEntry, end time.Time) error {
	b, _ := json.Marshal(e)
	if err := storeEntry(ctx, s.st(), s.ownPath(key), b); err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.published[key]; ok || len(s.published) < s.maxKeys {
		s.published[key] = end
	} else {
		s.overflow = true
	}
	s.mu.Unlock()
	return nil
}

// unpublish deletes this instance's entry for key.
func (s *limitStore) unpublish(ctx context.Context, key string) error {
	s.mu.Lock()
	delete(s.published, key)
	s.mu.Unlock()
	err := s.st().Delete(ctx, s.ownPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// others reads every other instance's entry for key. An instance without
// one is skipped; an entry that cannot be read or parsed fails the read, so
// the caller decides on what it already knows rather than on a count too low.
func (s *limitStore) others(ctx context.Context, key string) ([]sharedEntry, error) {
	st := s.st()
	dirs, err := st.List(ctx, limitsPrefix, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	name := keyFile(key)
	var out []sharedEntry
	for _, d := range dirs {
		if path.Base(d) == s.id {
			continue
		}
		b, err := st.Load(ctx, path.Join(d, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var e sharedEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// warn logs a storage failure at most once a minute: while the storage is
// down every coordination fails, and each instance counts alone.
func (s *limitStore) warn(msg string, err error) {
	t := time.Now().UnixNano()
	if last := s.warnAt.Load(); t < last || !s.warnAt.CompareAndSwap(last, t+int64(time.Minute)) {
		return
	}
	s.logger.Warn(msg, zap.Error(err))
}

func (s *limitStore) writeHeartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	b, _ := json.Marshal(heartbeat{At: now().UnixMilli(), Longest: time.Duration(s.longest.Load()).Milliseconds()})
	if err := s.st().Store(ctx, path.Join(limitsPrefix, s.id, aliveName), b); err != nil {
		s.warn("rate limits: writing the heartbeat to storage failed", err)
	}
}

// run refreshes the heartbeat and sweeps until close.
func (s *limitStore) run() {
	defer close(s.done)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.writeHeartbeat()
		s.sweepOwn()
		if n%10 == 0 {
			s.sweepDead()
		}
	}
}

// sweepOwn deletes this instance's entries whose window ended.
func (s *limitStore) sweepOwn() {
	t := now()
	s.mu.Lock()
	var ended []string
	for k, end := range s.published {
		if !t.Before(end) {
			ended = append(ended, k)
		}
	}
	overflow := s.overflow
	s.overflow = false
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, k := range ended {
		s.mu.Lock()
		end, ok := s.published[k]
		s.mu.Unlock()
		if ok && !t.Before(end) {
			if err := s.unpublish(ctx, k); err != nil {
				s.warn("rate limits: deleting an ended window failed", err)
			}
		}
	}
	if overflow {
		s.sweepDir(ctx, path.Join(limitsPrefix, s.id), t, time.Duration(s.longest.Load()))
	}
}

// sweepDir deletes the entries of dir whose window ended, read one by one:
// only after the published map overflowed, which the limits make rare.
func (s *limitStore) sweepDir(ctx context.Context, dir string, t time.Time, longest time.Duration) {
	st := s.st()
	keys, err := st.List(ctx, dir, false)
	if err != nil {
		return
	}
	for _, k := range keys {
		if path.Base(k) == aliveName {
			continue
		}
		b, err := st.Load(ctx, k)
		var e sharedEntry
		if err != nil || json.Unmarshal(b, &e) != nil {
			continue
		}
		if !t.Before(time.UnixMilli(e.Start).Add(longest)) {
			_ = st.Delete(ctx, k)
		}
	}
}

// sweepDead removes the directory of an instance whose heartbeat is older
// than its longest window plus deadAfter: every window it counted has
// ended. A directory without a heartbeat is left alone (it may be an
// instance starting).
func (s *limitStore) sweepDead() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := s.st()
	dirs, err := st.List(ctx, limitsPrefix, false)
	if err != nil {
		return
	}
	t := now()
	for _, d := range dirs {
		if path.Base(d) == s.id || strings.Contains(path.Base(d), ".") {
			continue
		}
		b, err := st.Load(ctx, path.Join(d, aliveName))
		var hb heartbeat
		if err != nil || json.Unmarshal(b, &hb) != nil {
			continue
		}
		if t.After(time.UnixMilli(hb.At).Add(time.Duration(hb.Longest)*time.Millisecond + deadAfter)) {
			if err := st.Delete(ctx, d); err != nil {
				s.warn("rate limits: removing a stopped instance's counts failed", err)
			}
		}
	}
}
