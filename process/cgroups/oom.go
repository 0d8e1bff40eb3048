package cgroups

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// oomSettle bounds how long WaitOOM looks for the kill counter to move
// after the kernel said the cgroup is out of memory (v1 notifies when the
// OOM starts, the kill follows).
const oomSettle = 200 * time.Millisecond

// WaitOOM blocks until the OOM killer has killed a process in id's memory
// cgroup and returns the kill count; or until ctx ends (ctx's error, unless
// a kill is found then), or the cgroup is removed (ErrNotFound). It sleeps in the kernel: v2 watches
// memory.events with inotify (the kernel notifies on every change), v1
// registers an eventfd for memory.oom_control through cgroup.event_control.
func (m *Manager) WaitOOM(ctx context.Context, id string) (uint64, error) {
	if err := validName(id); err != nil {
		return 0, err
	}
	d, ok := m.ctlDir[Memory]
	if !ok {
		return 0, fmt.Errorf("no memory controller: %w", errdefs.ErrFailedPrecondition)
	}
	dir := filepath.Join(d, id)
	var ev *os.File
	var err error
	if m.layout.Version == V2 {
		ev, err = watchFile(filepath.Join(dir, "memory.events"))
	} else {
		ev, err = oomEventfd(dir)
	}
	if err != nil {
		return 0, err
	}
	// Closing the file wakes the Read below (both are non-blocking fds on
	// Go's poller).
	stop := context.AfterFunc(ctx, func() { _ = ev.Close() })
	defer func() {
		if stop() {
			_ = ev.Close()
		}
	}()
	buf := make([]byte, 4096)
	woken := false
	for {
		// Checked before the first wait too: a kill before the watch began
		// is not missed.
		n, err := m.oomKills(id)
		deadline := time.Now().Add(oomSettle)
		for err == nil && n == 0 && woken && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			n, err = m.oomKills(id)
		}
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		if _, err := ev.Read(buf); err != nil {
			if ctx.Err() != nil {
				// A last look: the kill may have happened while the
				// caller stopped waiting (a container whose OOM-killed
				// command's exit was seen first is being destroyed).
				if n, err := m.oomKills(id); err == nil && n > 0 {
					return n, nil
				}
				return 0, fmt.Errorf("waiting for an OOM kill in %s: %w", dir, ctx.Err())
			}
			return 0, classify("wait for an OOM kill in", dir, err)
		}
		woken = true
	}
}

// watchFile returns an inotify fd that becomes readable when path changes.
func watchFile(path string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, classify("inotify_init", path, err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		_ = unix.Close(fd)
		return nil, classify("inotify_add_watch", path, err)
	}
	return os.NewFile(uintptr(fd), "inotify:"+path), nil
}

// oomEventfd registers an eventfd that the v1 memory controller signals
// when the cgroup dir runs out of memory (and when the cgroup is removed).
func oomEventfd(dir string) (*os.File, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, classify("eventfd for", dir, err)
	}
	ev := os.NewFile(uintptr(efd), "eventfd:"+dir)
	// The registration takes "<event fd> <control file fd>"; the kernel
	// keeps its own reference to the control file, so ours is closed after.
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		_ = ev.Close()
		return nil, classify("open", filepath.Join(dir, "memory.oom_control"), err)
	}
	defer ctl.Close()
	rc, err := ctl.SyscallConn()
	if err != nil {
		_ = ev.Close()
		return nil, classify("open", filepath.Join(dir, "memory.oom_control"), err)
	}
	var werr error
	if err := rc.Control(func(ctlFd uintptr) {
		werr = writeFile(filepath.Join(dir, "cgroup.event_control"), strconv.Itoa(efd)+" "+strconv.Itoa(int(ctlFd)))
	}); err != nil {
		werr = err
	}
	if werr != nil {
		_ = ev.Close()
		return nil, werr
	}
	return ev, nil
}
