package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/launch"
)

// LinuxOptions configure the Linux launcher.
type LinuxOptions struct {
	// InitPath is the binary re-executed as the container's init; "" means
	// this binary (/proc/self/exe resolved at construction).
	InitPath string
	// InitName is the init's argv[0] (default InitPath): a sealed copy's
	// path says nothing to someone reading ps.
	InitName string
	// InitArgs go between the binary and "init <id> <runtime_dir>" (a test
	// binary needs none: it checks launch.IsInit in TestMain).
	InitArgs []string
	// RuntimeRoot is the agent's runtime dir; the orphan scan only considers
	// inits whose runtime directory is below it.
	RuntimeRoot string
	Logger      *zap.Logger
	// Clock is used for the grace period before a finished container's
	// record is dropped; nil means time.AfterFunc.
	AfterFunc func(time.Duration, func())
}

// forgetAfter is how long a finished container's exit status stays
// readable when no Wait collected it.
const forgetAfter = time.Minute

// Linux is the Linux launcher (Mesos's LinuxLauncher): every container's
// first process is Berth's init, cloned into new namespaces and in its own
// session; its pid namespace holds every process of the container.
type Linux struct {
	o      LinuxOptions
	mu     sync.Mutex
	procs  map[string]*proc
	reaper *reaper
}

// proc is one container's init, forked by us or recovered.
type proc struct {
	id         string
	pid        int
	start      uint64
	runtimeDir string
	pidns      bool
	pidfd      int // a pidfd of a recovered init, else -1
	// child is true when we forked it (and reap it); false when recovered.
	child bool
	// mu guards release, reports, pidfd and onExit.
	mu sync.Mutex
	// release and reports are the init's pipes, until the command runs.
	release *os.File
	reports *os.File
	stderr  string
	done    chan struct{}
	ws      syscall.WaitStatus
	wsKnown bool
	// onExit run, once, when done closes (WaitFunc).
	onExit []func()
}

// exited closes done and runs the callbacks of WaitFunc; done is closed
// under mu so that a WaitFunc either sees it closed or is called here.
func (p *proc) exited() {
	p.mu.Lock()
	close(p.done)
	fns := p.onExit
	p.onExit = nil
	p.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

var _ Launcher = (*Linux)(nil)

// NewLinux returns the launcher.
func NewLinux(o LinuxOptions) (*Linux, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	if o.InitPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("launcher: find this binary: %w", err)
		}
		o.InitPath = exe
	}
	if o.RuntimeRoot == "" || !filepath.IsAbs(o.RuntimeRoot) {
		return nil, fmt.Errorf("launcher: runtime root %q must be absolute: %w", o.RuntimeRoot, errdefs.ErrInvalidArgument)
	}
	return &Linux{o: o, procs: map[string]*proc{}, reaper: newReaper()}, nil
}

var cloneFlags = map[isolatorv1.Namespace]uintptr{
	isolatorv1.Namespace_NAMESPACE_MOUNT:  unix.CLONE_NEWNS,
	isolatorv1.Namespace_NAMESPACE_PID:    unix.CLONE_NEWPID,
	isolatorv1.Namespace_NAMESPACE_UTS:    unix.CLONE_NEWUTS,
	isolatorv1.Namespace_NAMESPACE_IPC:    unix.CLONE_NEWIPC,
	isolatorv1.Namespace_NAMESPACE_NET:    unix.CLONE_NEWNET,
	isolatorv1.Namespace_NAMESPACE_CGROUP: unix.CLONE_NEWCGROUP,
}

// Fork starts the init and returns once it is set up and blocked before
// exec, or with the error it reported.
func (l *Linux) Fork(ctx context.Context, id string, spec *launcherv1.LaunchSpec, io IO) (Process, error) {
	if id == "" {
		return Process{}, fmt.Errorf("fork: empty container id: %w", errdefs.ErrInvalidArgument)
	}
	var flags uintptr
	for _, ns := range spec.GetNamespaces() {
		f, ok := cloneFlags[ns]
		if !ok {
			return Process{}, fmt.Errorf("fork %s: namespace %v: %w", id, ns, errdefs.ErrInvalidArgument)
		}
		flags |= f
	}
	runtimeDir := spec.GetRuntimeDir()
	if runtimeDir == "" {
		runtimeDir = filepath.Join(l.o.RuntimeRoot, "containers", id)
	}
	p := &proc{id: id, runtimeDir: runtimeDir, pidns: flags&unix.CLONE_NEWPID != 0, pidfd: -1, child: true, stderr: io.StderrPath, done: make(chan struct{})}
	l.mu.Lock()
	if _, ok := l.procs[id]; ok {
		l.mu.Unlock()
		return Process{}, fmt.Errorf("fork %s: the container already has processes: %w", id, errdefs.ErrAlreadyExists)
	}
	l.procs[id] = p
	l.mu.Unlock()
	proc, err := l.start(ctx, p, spec, flags, io)
	if err != nil {
		l.forget(id)
		return Process{}, err
	}
	return proc, nil
}

func (l *Linux) start(ctx context.Context, p *proc, spec *launcherv1.LaunchSpec, flags uintptr, streams IO) (Process, error) {
	if err := os.MkdirAll(p.runtimeDir, 0o700); err != nil {
		return Process{}, fmt.Errorf("fork %s: runtime dir: %w", p.id, err)
	}
	if err := os.Remove(filepath.Join(p.runtimeDir, launch.StatusFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Process{}, fmt.Errorf("fork %s: %w", p.id, err)
	}
	files, closeAll, err := openStdio(streams)
	if err != nil {
		return Process{}, fmt.Errorf("fork %s: %w", p.id, err)
	}
	defer closeAll()
	specR, specW, err := os.Pipe()
	if err != nil {
		return Process{}, err
	}
	defer specR.Close()
	relR, relW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return Process{}, err
	}
	defer relR.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		specW.Close()
		relW.Close()
		return Process{}, err
	}
	defer repW.Close()
	p.mu.Lock()
	p.release, p.reports = relW, repR
	p.mu.Unlock()
	name := l.o.InitName
	if name == "" {
		name = l.o.InitPath
	}
	argv := append(append([]string{name}, l.o.InitArgs...), launch.InitArgs(p.id, p.runtimeDir)...)
	attr := &os.ProcAttr{
		Env:   launch.InitEnviron(),
		Files: append(files, specR, relR, repW),
		Sys:   &syscall.SysProcAttr{Cloneflags: flags, Setsid: true},
	}
	osp, err := os.StartProcess(l.o.InitPath, argv, attr)
	if err != nil {
		specW.Close()
		p.closePipes()
		return Process{}, fmt.Errorf("fork %s: start init: %w", p.id, err)
	}
	start, _ := StartTime(osp.Pid)
	p.mu.Lock()
	p.pid, p.start = osp.Pid, start
	p.mu.Unlock()
	if !l.reaper.watch(osp, func() { l.reap(p, osp) }) {
		go l.reap(p, osp)
	}
	go func() {
		// The pipe holds 64 KiB; a bigger spec must not hold up the reads.
		_ = launch.WriteFrame(specW, spec)
		specW.Close()
	}()
	rep, err := l.report(ctx, p, repR)
	if err == nil && rep.GetStage() != launcherv1.ChildReport_STAGE_READY {
		err = fmt.Errorf("unexpected report %v: %w", rep.GetStage(), errdefs.ErrInternal)
	}
	if err != nil {
		l.kill(p)
		<-p.done
		p.closePipes()
		return Process{}, fmt.Errorf("set up container %s: %w", p.id, err)
	}
	l.o.Logger.Debug("init ready", zap.String("container", p.id), zap.Int("pid", p.pid))
	return Process{Pid: p.pid, StartTime: p.start}, nil
}

// openStdio opens /dev/null for stdin and the output files.
func openStdio(s IO) ([]*os.File, func(), error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	files = append(files, in)
	for _, path := range []string{s.StdoutPath, s.StderrPath} {
		var f *os.File
		if path == "" {
			f, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		} else {
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("container output: %w", err)
		}
		files = append(files, f)
	}
	return files, closeAll, nil
}

// report reads the init's next report. A FAILED report becomes its error;
// the pipe's EOF means the init died, and its exit says how.
func (l *Linux) report(ctx context.Context, p *proc, reports *os.File) (*launcherv1.ChildReport, error) {
	type result struct {
		r   *launcherv1.ChildReport
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r := &launcherv1.ChildReport{}
		err := launch.ReadFrame(reports, r)
		ch <- result{r, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the container's init: %w", ctx.Err())
	case res := <-ch:
		switch {
		case errors.Is(res.err, io.EOF) || errors.Is(res.err, io.ErrUnexpectedEOF):
			<-p.done
			return nil, fmt.Errorf("the container's init exited (%s) without a report%s: %w", describe(p.ws), tail(p.stderr), errdefs.ErrInternal)
		case res.err != nil:
			return nil, res.err
		case res.r.GetStage() == launcherv1.ChildReport_STAGE_FAILED:
			return nil, errdefs.FromStatus(res.r.GetError())
		}
		return res.r, nil
	}
}

// reap waits for a forked init and records how it ended; from the reaper
// it runs once the init has exited, so the wait returns at once.
func (l *Linux) reap(p *proc, osp *os.Process) {
	st, err := osp.Wait()
	if err == nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok {
			p.ws, p.wsKnown = ws, true
		}
	}
	p.exited()
}

// Exec releases the init and returns once the command runs.
func (l *Linux) Exec(ctx context.Context, id string) error {
	p, err := l.get(id)
	if err != nil {
		return err
	}
	p.mu.Lock()
	release, reports := p.release, p.reports
	p.release, p.reports = nil, nil
	p.mu.Unlock()
	if release == nil || reports == nil {
		return fmt.Errorf("exec %s: the command was already released: %w", id, errdefs.ErrFailedPrecondition)
	}
	defer reports.Close()
	_, err = release.Write([]byte{1})
	release.Close()
	if err != nil {
		return fmt.Errorf("exec %s: release the init: %w", id, err)
	}
	rep, err := l.report(ctx, p, reports)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	if rep.GetStage() != launcherv1.ChildReport_STAGE_STARTED {
		return fmt.Errorf("exec %s: unexpected report %v: %w", id, rep.GetStage(), errdefs.ErrInternal)
	}
	return nil
}

// Wait blocks until the init has exited.
func (l *Linux) Wait(ctx context.Context, id string) (ExitStatus, error) {
	p, err := l.get(id)
	if err != nil {
		return ExitStatus{}, err
	}
	select {
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	case <-p.done:
	}
	return l.exitStatus(id, p)
}

// WaitFunc is Wait without a goroutine per waiter: fn gets the init's exit
// status on the goroutine that saw the exit (the reaper), or on a new one
// when the init has exited already; fn must not block for long. An
// unknown id calls fn with the error at once. An agent tracking many
// containers saves one goroutine stack each (docs/operations.md).
func (l *Linux) WaitFunc(id string, fn func(ExitStatus, error)) {
	p, err := l.get(id)
	if err != nil {
		fn(ExitStatus{}, err)
		return
	}
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		go func() { fn(l.exitStatus(id, p)) }()
		return
	default:
	}
	p.onExit = append(p.onExit, func() { fn(l.exitStatus(id, p)) })
	p.mu.Unlock()
}

// exitStatus forgets an exited init and returns how it ended: from the
// status file its init wrote, else from the reaper.
func (l *Linux) exitStatus(id string, p *proc) (ExitStatus, error) {
	l.forget(id)
	ws, ok, err := launch.ReadStatus(p.runtimeDir)
	if err != nil {
		l.o.Logger.Warn("unreadable status file", zap.String("container", id), zap.Error(err))
	}
	if ok {
		return ExitStatus{WaitStatus: ws, Known: true}, nil
	}
	return ExitStatus{WaitStatus: p.ws, Known: p.wsKnown}, nil
}

// Signal sends sig to the init, which forwards it to the command (SIGKILL
// and SIGSTOP reach the init itself: SIGKILL ends the whole container).
func (l *Linux) Signal(_ context.Context, id string, sig syscall.Signal) error {
	p, err := l.get(id)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return fmt.Errorf("signal %s: the container has exited: %w", id, errdefs.ErrFailedPrecondition)
	default:
	}
	if err := l.signal(p, sig); err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	return nil
}

func (l *Linux) signal(p *proc, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		return unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
	return unix.Kill(p.pid, sig)
}

// Destroy kills every process of the container and waits for the init.
func (l *Linux) Destroy(ctx context.Context, id string) (bool, error) {
	l.mu.Lock()
	p, ok := l.procs[id]
	l.mu.Unlock()
	if !ok {
		return false, nil
	}
	l.kill(p)
	select {
	case <-ctx.Done():
		return true, fmt.Errorf("destroy %s: waiting for the init: %w", id, ctx.Err())
	case <-p.done:
	}
	if !p.pidns {
		// Without a pid namespace the command's descendants outlive the
		// init; they are still in its session.
		if err := killSession(ctx, p.pid); err != nil {
			return true, fmt.Errorf("destroy %s: %w", id, err)
		}
	}
	p.closePipes()
	// A Wait issued before the kill may still be on its way.
	l.o.AfterFunc(forgetAfter, func() { l.forget(id) })
	return true, nil
}

// kill sends SIGKILL to the init: in a pid namespace the kernel then kills
// every other process in it.
func (l *Linux) kill(p *proc) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := l.signal(p, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		l.o.Logger.Warn("kill init", zap.String("container", p.id), zap.Int("pid", p.pid), zap.Error(err))
	}
}

func (p *proc) closePipes() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.release != nil {
		p.release.Close()
		p.release = nil
	}
	if p.reports != nil {
		p.reports.Close()
		p.reports = nil
	}
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

func (l *Linux) get(id string) (*proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.procs[id]
	if !ok {
		return nil, fmt.Errorf("container %s has no processes: %w", id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (l *Linux) forget(id string) {
	l.mu.Lock()
	delete(l.procs, id)
	l.mu.Unlock()
}

// describe says how a process ended.
func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", int(ws))
}

// tail returns the end of the container's stderr, for an error message.
func tail(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return ""
	}
	const n = 512
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return fmt.Sprintf("; its stderr ends: %q", string(b))
}
