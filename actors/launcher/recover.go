package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/launch"
)

// Recover re-attaches to the inits of known containers and finds orphans:
// inits below our runtime root that no checkpoint names. A recovered init
// is held by a pidfd (opened before its start time is checked, so a reused
// pid cannot be mistaken for it); it is not our child, so its exit status
// comes from the status file it wrote.
func (l *Linux) Recover(_ context.Context, known []Known) (alive, orphans []string, err error) {
	seen := map[int]bool{}
	for _, k := range known {
		p := l.attach(k.ID, k.Process.Pid, k.Process.StartTime, k.RuntimeDir)
		seen[k.Process.Pid] = true
		if p.pidfd >= 0 {
			alive = append(alive, k.ID)
		}
		l.mu.Lock()
		l.procs[k.ID] = p
		l.mu.Unlock()
	}
	inits, err := l.scanInits()
	if err != nil {
		return alive, nil, fmt.Errorf("launcher recover: %w", err)
	}
	for _, in := range inits {
		l.mu.Lock()
		_, dup := l.procs[in.id]
		l.mu.Unlock()
		if seen[in.pid] || dup {
			continue
		}
		p := l.attach(in.id, in.pid, 0, in.runtimeDir)
		if p.pidfd < 0 {
			continue
		}
		l.o.Logger.Info("orphan container init", zap.String("container", in.id), zap.Int("pid", in.pid))
		l.mu.Lock()
		l.procs[in.id] = p
		l.mu.Unlock()
		orphans = append(orphans, in.id)
	}
	return alive, orphans, nil
}

// attach returns a proc for an init that is not our child; pidfd is -1 and
// done closed when it is gone (or its pid now names another process).
func (l *Linux) attach(id string, pid int, start uint64, runtimeDir string) *proc {
	p := &proc{id: id, pid: pid, start: start, runtimeDir: runtimeDir, pidfd: -1, done: make(chan struct{})}
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		got, serr := StartTime(pid)
		if serr != nil || (start != 0 && got != start) {
			unix.Close(fd)
			fd = -1
		} else {
			p.start = got
		}
	} else {
		fd = -1
	}
	if fd < 0 {
		p.exited()
		return p
	}
	p.pidfd = fd
	p.pidns = inOwnPidNamespace(pid)
	// The reaper watches a duplicate: it closes its fd when the process
	// exits, while p.pidfd stays open for signals until the proc goes.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil || !l.reaper.watchPidfd(dup, p.exited) {
		go waitPidfd(fd, p)
	}
	return p
}

// waitPidfd marks p exited when the process behind fd has exited (the
// pidfd becomes readable).
func waitPidfd(fd int, p *proc) {
	defer p.exited()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return
	}
}

// initProcess is an init found in /proc.
type initProcess struct {
	id, runtimeDir string
	pid            int
}

// scanInits lists the processes that are Berth inits of this agent: their
// argv says "init <id> <dir>" with dir below our runtime root, and their
// parent is in our pid namespace (a process inside a container cannot
// pass for one by copying the argv).
func (l *Linux) scanInits() ([]initProcess, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	ourNs, _ := os.Readlink("/proc/self/ns/pid")
	root := filepath.Join(l.o.RuntimeRoot, "containers") + "/"
	var out []initProcess
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte("init\x00")) {
			continue
		}
		argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		id, dir, ok := launch.ParseInitArgs(argv)
		if !ok || filepath.Dir(dir)+"/" != root || filepath.Base(dir) != id {
			continue
		}
		if ppid, err := parentPid(pid); err != nil || !sameNs(ppid, ourNs) {
			continue
		}
		out = append(out, initProcess{id: id, runtimeDir: dir, pid: pid})
	}
	return out, nil
}

func sameNs(pid int, ns string) bool {
	got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return err == nil && got == ns
}

// inOwnPidNamespace says whether pid is the init of a pid namespace of its
// own (its NSpid line has a last field of 1).
func inOwnPidNamespace(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "NSpid:" {
			return f[len(f)-1] == "1"
		}
	}
	return false
}

// StartTime returns field 22 of /proc/<pid>/stat, the process's start time
// in clock ticks since boot.
func StartTime(pid int) (uint64, error) {
	f, err := statField(pid, 22)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f, 10, 64)
}

func parentPid(pid int) (int, error) {
	f, err := statField(pid, 4)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f)
}

func sessionID(pid int) (int, error) {
	f, err := statField(pid, 6)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f)
}

// statField returns field n (1-based, as proc(5) numbers them) of
// /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its closing parenthesis.
func statField(pid, n int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if n < 3 || n-3 >= len(f) {
		return "", errors.New("short /proc stat")
	}
	return f[n-3], nil
}

// killSession kills every process in session sid until none is left.
func killSession(ctx context.Context, sid int) error {
	for {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		left := 0
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if s, err := sessionID(pid); err == nil && s == sid {
				left++
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d processes of session %d survive SIGKILL: %w", left, sid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
