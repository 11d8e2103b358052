package testenv

import (
	"bytes"
	"sync"
)

// Output of a child process, read by the test while it runs.

// SyncBuffer is a bytes.Buffer safe for the exec package's copy goroutine
// writing while the test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
