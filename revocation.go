package emailotp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// The revocation list: one JSON document in Caddy's storage, shared by every
// instance using that storage, and by the gate, the handler's RFC 7009 and
// RFC 7662 endpoints and the admin API alike. It names credentials by jti,
// everything issued to an address up to a moment, and everything issued up
// to a moment. The instance that takes a revocation applies it at once; the
// others read the document again every revocationRefresh.
//
// A revocation is rare and the document small, so a write is lock → load →
// merge and prune → store → unlock on the whole document, and a read is one
// Load. Entries are dropped once nothing they name can still be valid, so the
// document's size is bounded by what was revoked within a credential's
// lifetime.
const (
	revocationKey  = "email_otp/revocations.json"
	revocationLock = "email_otp_revocations"

	// DefaultRevocationRefresh is how often each instance reads the list
	// again: a revocation taken elsewhere is honoured within this delay.
	DefaultRevocationRefresh = 30 * time.Second

	// maxCredentialLife is the longest anything email_otp signs stays
	// valid (a session_lifetime of 720h) plus the gate's largest leeway:
	// an address or time entry is kept that long after its moment.
	maxCredentialLife = 30*24*time.Hour + 10*time.Minute

	// revokedJTIKeep is how long after its token's exp a jti entry is
	// kept: the gate's largest leeway.
	revokedJTIKeep = 10 * time.Minute
)

// revocationDoc is the stored document. Times are Unix seconds.
type revocationDoc struct {
	// JTI maps a revoked token or session id to its exp.
	JTI map[string]int64 `json:"jti,omitempty"`
	// Address maps a normalized, lower-cased address to the moment up to
	// which (inclusive, to the second) what it was issued is revoked.
	Address map[string]int64 `json:"address,omitempty"`
	// Before revokes everything issued up to this moment (inclusive).
	Before int64 `json:"before,omitempty"`
}

// revocation is one entry to add: exactly one of its fields is set.
type revocation struct {
	jti     string
	exp     time.Time // of the token named by jti
	address string    // address.key()
	before  time.Time // with address, or alone: everything issued up to it
}

// merge adds e and drops entries that nothing valid can match any more.
func (d *revocationDoc) merge(e revocation, t time.Time) {
	switch {
	case e.jti != "":
		if d.JTI == nil {
			d.JTI = map[string]int64{}
		}
		d.JTI[e.jti] = max(d.JTI[e.jti], e.exp.Unix())
	case e.address != "":
		if d.Address == nil {
			d.Address = map[string]int64{}
		}
		d.Address[e.address] = max(d.Address[e.address], e.before.Unix())
	default:
		d.Before = max(d.Before, e.before.Unix())
	}
	d.prune(t)
}

func (d *revocationDoc) prune(t time.Time) {
	jtiEnd := t.Add(-revokedJTIKeep).Unix()
	for k, exp := range d.JTI {
		if exp < jtiEnd {
			delete(d.JTI, k)
		}
	}
	cutEnd := t.Add(-maxCredentialLife).Unix()
	for k, c := range d.Address {
		if c < cutEnd {
			delete(d.Address, k)
		}
	}
	if d.Before < cutEnd {
		d.Before = 0
	}
}

// revokedSet is an immutable view of the document for lookups.
type revokedSet struct {
	jti     map[string]struct{}
	address map[string]int64
	before  int64
	empty   bool
}

func newRevokedSet(d *revocationDoc) *revokedSet {
	s := &revokedSet{jti: make(map[string]struct{}, len(d.JTI)), address: d.Address, before: d.Before}
	for k := range d.JTI {
		s.jti[k] = struct{}{}
	}
	s.empty = len(s.jti) == 0 && len(s.address) == 0 && s.before == 0
	return s
}

// revocationList is the in-process copy of one storage's list.
type revocationList struct {
	storage certmagic.Storage
	logger  *zap.Logger
	set     atomic.Pointer[revokedSet]
	refresh atomic.Int64 // nanoseconds between two reads of storage

	// mu orders reads and writes of the document in this process, so a
	// read that started before a local write cannot replace its result.
	mu   sync.Mutex
	last []byte // the document as last read or written

	stop    context.CancelFunc
	stopped chan struct{}
	shorter chan struct{} // the refresh interval was lowered: restart the wait
}

// revoked reports whether a credential with this jti, issued at iat (Unix
// seconds) to the address is revoked. It is the gate's hot path: one atomic
// load when nothing is revoked, map lookups otherwise; the address key is
// only computed when some address is listed.
func (l *revocationList) revoked(jti string, addr address, iat int64) bool {
	if l == nil {
		return false // a module built outside Provision (benchmarks)
	}
	s := l.set.Load()
	if s.empty {
		return false
	}
	if iat <= s.before {
		return true
	}
	if _, ok := s.jti[jti]; ok && jti != "" {
		return true
	}
	if len(s.address) > 0 {
		if c, ok := s.address[addr.key()]; ok && iat <= c {
			return true
		}
	}
	return false
}

// add writes e to storage and applies it here at once.
func (l *revocationList) add(ctx context.Context, e revocation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.storage.Lock(ctx, revocationLock); err != nil {
		return fmt.Errorf("revocation list lock: %w", err)
	}
	defer func() { _ = l.storage.Unlock(context.WithoutCancel(ctx), revocationLock) }()
	doc, _, err := l.load(ctx)
	if err != nil {
		return err
	}
	doc.merge(e, now())
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := l.storage.Store(ctx, revocationKey, b); err != nil {
		return fmt.Errorf("revocation list store: %w", err)
	}
	l.last = b
	l.set.Store(newRevokedSet(doc))
	return nil
}

// load reads and parses the stored document; a missing one is empty.
func (l *revocationList) load(ctx context.Context) (*revocationDoc, []byte, error) {
	doc := new(revocationDoc)
	b, err := l.storage.Load(ctx, revocationKey)
	if errors.Is(err, errNotExist) {
		return doc, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("revocation list load: %w", err)
	}
	if err := json.Unmarshal(b, doc); err != nil {
		return nil, nil, fmt.Errorf("revocation list %s: %w", revocationKey, err)
	}
	return doc, b, nil
}

// read loads the document and, if it changed, replaces the set.
func (l *revocationList) read(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	doc, b, err := l.load(ctx)
	if err != nil {
		return err
	}
	if l.set.Load() != nil && bytes.Equal(b, l.last) {
		return nil
	}
	doc.prune(now())
	l.last = b
	l.set.Store(newRevokedSet(doc))
	return nil
}

// wantRefresh lowers the refresh interval to d if it is shorter: several
// modules share one list, and the shortest delay asked for is kept.
func (l *revocationList) wantRefresh(d time.Duration) {
	if d <= 0 {
		d = DefaultRevocationRefresh
	}
	for {
		cur := l.refresh.Load()
		if cur != 0 && cur <= int64(d) {
			return
		}
		if l.refresh.CompareAndSwap(cur, int64(d)) {
			select {
			case l.shorter <- struct{}{}:
			default:
			}
			return
		}
	}
}

// follow reads storage every refresh interval until Destruct.
func (l *revocationList) follow() {
	ctx, cancel := context.WithCancel(context.Background())
	l.stop, l.stopped = cancel, make(chan struct{})
	go func() {
		defer close(l.stopped)
		for {
			t := time.NewTimer(time.Duration(l.refresh.Load()))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-l.shorter:
				t.Stop()
				continue
			case <-t.C:
			}
			rctx, done := context.WithTimeout(ctx, 30*time.Second)
			if err := l.read(rctx); err != nil && ctx.Err() == nil {
				l.logger.Warn("reading the revocation list", zap.Error(err))
			}
			done()
		}
	}()
}

// Destruct stops following storage when the last module using the list is
// cleaned up, and waits for a read in progress.
func (l *revocationList) Destruct() error {
	if l.stop != nil {
		l.stop()
		<-l.stopped
	}
	return nil
}

// revocationLists holds one list per storage across config reloads.
var revocationLists = caddy.NewUsagePool()

// storageID names a storage: its String() where it has one (certmagic's
// FileStorage gives its path), else the value's address, which is the same
// for every module of one config (ctx.Storage()).
func storageID(st certmagic.Storage) string {
	if s, ok := st.(fmt.Stringer); ok {
		return fmt.Sprintf("%T %s", st, s.String())
	}
	return fmt.Sprintf("%T %p", st, st)
}

// openRevocations returns the list of storage, read once now, and the pool
// key to release in Cleanup. refresh is the delay this module needs (0: the
// default).
func openRevocations(storage certmagic.Storage, logger *zap.Logger, refresh time.Duration) (*revocationList, string, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	key := storageID(storage)
	v, _, err := revocationLists.LoadOrNew(key, func() (caddy.Destructor, error) {
		l := &revocationList{storage: storage, logger: logger, shorter: make(chan struct{}, 1)}
		l.wantRefresh(refresh)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.read(ctx); err != nil {
			return nil, err
		}
		l.follow()
		return l, nil
	})
	if err != nil {
		return nil, "", err
	}
	l := v.(*revocationList)
	l.wantRefresh(refresh)
	return l, key, nil
}

// revocationsOf returns the live list of storage if a module of this process
// holds one, else a list that only writes (the admin API of an instance that
// serves no email_otp module).
func revocationsOf(storage certmagic.Storage) *revocationList {
	key := storageID(storage)
	var found *revocationList
	revocationLists.Range(func(k, v any) bool {
		if k == key {
			found = v.(*revocationList)
			return false
		}
		return true
	})
	if found != nil {
		return found
	}
	return &revocationList{storage: storage, logger: zap.NewNop()}
}

// validateRevocationRefresh keeps the stated delay of a revocation: at most
// a minute, and not so short that every instance hammers the storage.
func validateRevocationRefresh(d caddy.Duration) error {
	if d != 0 && (d < caddy.Duration(100*time.Millisecond) || d > caddy.Duration(time.Minute)) {
		return fmt.Errorf("revocation_refresh %s out of range 100ms-60s", time.Duration(d))
	}
	return nil
}
