package launcher

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper waits for many inits on one goroutine. Each init's pidfd goes into
// an epoll set; a pidfd becomes readable when its process exits, and the
// process is then reaped with os.Process.Wait, which no longer blocks. A
// goroutine per init would hold a stack per container (8 to 32 KiB: with
// 1,000 containers a third of the agent's memory, docs/operations.md).
// The goroutine runs only while some init is watched.
type reaper struct {
	mu      sync.Mutex
	epfd    int
	running bool
	// watched maps a pidfd to what to do when its process has exited.
	watched map[int32]func()
}

func newReaper() *reaper { return &reaper{epfd: -1, watched: map[int32]func(){}} }

// watch calls exited on the reaper's goroutine once osp has exited; osp
// must be our child and not yet reaped, so that its pid names it. It
// returns false when the kernel cannot give a pidfd (then the caller
// waits on its own).
func (r *reaper) watch(osp *os.Process, exited func()) bool {
	// pidfd_open(2) of an unreaped child cannot name another process; its
	// fd is close-on-exec, so no container inherits it.
	fd, err := unix.PidfdOpen(osp.Pid, 0)
	if err != nil {
		return false
	}
	return r.watchPidfd(fd, exited)
}

// watchPidfd calls exited once the process behind the pidfd fd has exited;
// the reaper owns fd from then on (and closes it), even when it returns
// false.
func (r *reaper) watchPidfd(fd int, exited func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.epfd < 0 {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			unix.Close(fd)
			return false
		}
		r.epfd = epfd
	}
	// Level-triggered: an exit that happened before this call is reported
	// by the next epoll_wait.
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return false
	}
	r.watched[int32(fd)] = exited
	if !r.running {
		r.running = true
		go r.loop(r.epfd)
	}
	return true
}

// loop waits for exits until no init is watched.
func (r *reaper) loop(epfd int) {
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Only a broken epoll fd fails here; the watched inits are
			// handed to blocking waits, as without a reaper.
			r.mu.Lock()
			pending := r.watched
			r.watched, r.running = map[int32]func(){}, false
			r.mu.Unlock()
			for fd, exited := range pending {
				unix.Close(int(fd))
				go exited()
			}
			return
		}
		var ready []func()
		r.mu.Lock()
		for _, ev := range events[:n] {
			exited, ok := r.watched[ev.Fd]
			if !ok {
				continue
			}
			delete(r.watched, ev.Fd)
			_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
			unix.Close(int(ev.Fd))
			ready = append(ready, exited)
		}
		done := len(r.watched) == 0
		if done {
			r.running = false
		}
		r.mu.Unlock()
		for _, exited := range ready {
			exited()
		}
		if done {
			return
		}
	}
}
