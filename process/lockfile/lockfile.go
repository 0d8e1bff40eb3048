// Package lockfile takes exclusive advisory locks (flock) on directories'
// lock files, so two agents never manage the same work and runtime
// directories at once: recovery destroys what it does not know, which would
// include the other agent's containers.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthrt/berth/process/errdefs"
)

// Lock is a held lock; Release frees it. The kernel frees it too when the
// process dies, so a crashed agent never leaves a stale lock.
type Lock struct{ f *os.File }

// Holder reads the pid recorded in a lock file, 0 if none.
func Holder(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// Acquire takes the lock at path. If another process holds it, busy is called
// once (it may log) and Acquire waits until the lock is free or ctx ends; with
// a nil busy it fails at once with errdefs.ErrUnavailable.
func Acquire(ctx context.Context, path string, busy func(holder int)) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if busy == nil {
			f.Close()
			return nil, fmt.Errorf("%s is locked by pid %d: %w", path, Holder(path), errdefs.ErrUnavailable)
		}
		if !told {
			busy(Holder(path))
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release frees the lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
