package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	"github.com/berthrt/berth/process/errdefs"
	"github.com/berthrt/berth/process/rootfs"
)

// IsInit says whether this process was started by the launcher as a
// container's init. The berth binary (and any test binary that launches
// containers) calls it first thing in main.
func IsInit() bool { return os.Getenv(InitEnv) != "" }

// Main runs the container's init and exits; it never returns.
func Main() {
	os.Exit(initMain())
}

// exitSetupFailed is the init's exit code when the container could not be
// set up (docker run's 125).
const exitSetupFailed = 125

// initProc is the init's state between its steps.
type initProc struct {
	spec    *launcherv1.LaunchSpec
	report  *os.File
	release *os.File
	status  *os.File
	sigs    chan os.Signal
}

func initMain() int {
	if v := os.Getenv(InitEnv); v != protocolVersion {
		fmt.Fprintf(os.Stderr, "berth init: launcher protocol %q, this binary speaks %q\n", v, protocolVersion)
		return exitSetupFailed
	}
	// Nothing but the three standard streams may reach the command, and no
	// process of the container may read our memory or descriptors through
	// /proc (CVE-2016-9962, CVE-2024-21626).
	if err := closeExtraFds(); err != nil {
		fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
		return exitSetupFailed
	}
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	p := &initProc{
		report:  os.NewFile(ReportFd, "report"),
		release: os.NewFile(ReleaseFd, "release"),
		sigs:    make(chan os.Signal, 64),
	}
	// Catch every signal: before the command runs a signal ends the init;
	// afterwards it is forwarded to the command. Enabling all 60-odd
	// signals costs the Go runtime a round trip to its signal thread each
	// (~1 ms in all), so it runs beside the setup and is waited for before
	// READY, the first moment anyone but the launcher knows our pid.
	notified := make(chan struct{})
	go func() {
		signal.Notify(p.sigs)
		close(notified)
	}()
	err := p.setup()
	<-notified
	if err != nil {
		p.fail(err)
		return exitSetupFailed
	}
	if err := WriteFrame(p.report, &launcherv1.ChildReport{Stage: launcherv1.ChildReport_STAGE_READY}); err != nil {
		return exitSetupFailed
	}
	if code, released := p.awaitRelease(); !released {
		return code
	}
	return p.run()
}

// closeExtraFds marks every descriptor above the report pipe close-on-exec,
// and the protocol pipes too.
func closeExtraFds() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// setup reads the spec and builds the container's world: mounts, devices,
// masks, hostname, pivot_root. It runs before the launcher isolates the
// init (cgroups), which is harmless: nothing of the command runs yet.
func (p *initProc) setup() error {
	spec := &launcherv1.LaunchSpec{}
	specFile := os.NewFile(SpecFd, "spec")
	err := ReadFrame(specFile, spec)
	specFile.Close()
	if err != nil {
		return fmt.Errorf("read launch spec: %w", err)
	}
	p.spec = spec
	if len(spec.GetArgs()) == 0 {
		return fmt.Errorf("launch spec has no command: %w", errdefs.ErrInvalidArgument)
	}
	if spec.GetRuntimeDir() != "" {
		// Opened before pivot_root: the runtime dir is on the host.
		f, err := os.OpenFile(filepath.Join(spec.GetRuntimeDir(), StatusFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("status file: %w", err)
		}
		p.status = f
	}
	// Orphaned descendants come back to us, so that we reap them, even
	// without a pid namespace.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	if hasNamespace(spec, "NAMESPACE_MOUNT") {
		plan := rootfs.Plan{
			Rootfs: spec.GetRootfs(), Mounts: spec.GetMounts(), Devices: spec.GetDevices(),
			MaskedPaths: spec.GetMaskedPaths(), ReadonlyPaths: spec.GetReadonlyPaths(),
		}
		if err := rootfs.Setup(plan); err != nil {
			return fmt.Errorf("set up the container's mounts: %w", err)
		}
	} else if spec.GetRootfs() != "" || len(spec.GetMounts()) > 0 {
		return fmt.Errorf("a rootfs or mounts need a mount namespace: %w", errdefs.ErrInvalidArgument)
	}
	if h := spec.GetHostname(); h != "" {
		if !hasNamespace(spec, "NAMESPACE_UTS") {
			return fmt.Errorf("a hostname needs a UTS namespace: %w", errdefs.ErrInvalidArgument)
		}
		if err := unix.Sethostname([]byte(h)); err != nil {
			return fmt.Errorf("sethostname %q: %w", h, err)
		}
	}
	if spec.GetRootfs() != "" {
		if err := rootfs.Pivot(spec.GetRootfs()); err != nil {
			return err
		}
	}
	return nil
}

func hasNamespace(spec *launcherv1.LaunchSpec, name string) bool {
	for _, ns := range spec.GetNamespaces() {
		if ns.String() == name {
			return true
		}
	}
	return false
}

// awaitRelease blocks until the launcher releases the command, or a signal
// or the launcher's death ends the container first.
func (p *initProc) awaitRelease() (code int, released bool) {
	got := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(p.release, b[:])
		got <- err
	}()
	for {
		select {
		case err := <-got:
			p.release.Close()
			if err != nil {
				// The launcher closed the pipe without releasing us: the
				// container is being destroyed.
				return exitSetupFailed, false
			}
			return 0, true
		case s := <-p.sigs:
			sig, ok := s.(syscall.Signal)
			if !ok || !terminates(sig) {
				continue
			}
			p.recordStatus(signaledStatus(sig))
			return 128 + int(sig), false
		}
	}
}

// run starts the command, reports it, and reaps until it exits.
func (p *initProc) run() int {
	spec := p.spec
	cmd, err := p.prepareCommand()
	if err != nil {
		p.fail(err)
		return exitSetupFailed
	}
	if err := limitCapabilities(DefaultCapabilities); err != nil {
		p.fail(err)
		return exitSetupFailed
	}
	if spec.GetNoNewPrivileges() {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			p.fail(fmt.Errorf("no_new_privs: %w", err))
			return exitSetupFailed
		}
	}
	pid, err := syscall.ForkExec(cmd.path, spec.GetArgs(), cmd.attr)
	if err != nil {
		p.fail(execError(spec.GetArgs()[0], err))
		return exitSetupFailed
	}
	_ = WriteFrame(p.report, &launcherv1.ChildReport{Stage: launcherv1.ChildReport_STAGE_STARTED, CommandPid: int32(pid)})
	p.report.Close()
	ws := p.reap(pid)
	p.recordStatus(ws)
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return exitSetupFailed
}

// reap forwards signals to the command and reaps every child until the
// command has exited; it returns the command's wait status.
func (p *initProc) reap(cmd int) syscall.WaitStatus {
	for {
		if ws, done := reapChildren(cmd); done {
			return ws
		}
		s := <-p.sigs
		sig, ok := s.(syscall.Signal)
		if !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGPIPE {
			// SIGURG is the Go runtime's own preemption signal.
			continue
		}
		_ = unix.Kill(cmd, sig)
	}
}

// reapChildren reaps every exited child without blocking.
func reapChildren(cmd int) (syscall.WaitStatus, bool) {
	var cmdStatus syscall.WaitStatus
	done := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return cmdStatus, done
		}
		if pid == cmd {
			cmdStatus, done = ws, true
		}
	}
}

func (p *initProc) recordStatus(ws syscall.WaitStatus) {
	if p.status != nil {
		_ = WriteStatus(p.status, ws)
	}
}

// fail reports err to the launcher (best effort: it may be gone).
func (p *initProc) fail(err error) {
	_ = WriteFrame(p.report, &launcherv1.ChildReport{Stage: launcherv1.ChildReport_STAGE_FAILED, Error: errdefs.ToStatus(err)})
	fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
}

// terminates says whether sig's default action ends a process.
func terminates(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPIPE:
		return false
	}
	return true
}

// signaledStatus is the wait status of a process killed by sig.
func signaledStatus(sig syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(sig) }
