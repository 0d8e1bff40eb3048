package aufs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/union"
	"github.com/berthrt/berth/process/errdefs"
	pmount "github.com/berthrt/berth/process/mount"
)

// Name is the aufs backend's registry key.
const Name = "aufs"

// filesystemsPath is where the kernel lists the filesystems it has.
const filesystemsPath = "/proc/filesystems"

// Supported reports whether the running kernel has aufs: whether
// /proc/filesystems lists it (built in, or its module loaded). A module
// that is installed but not loaded does not count; the agent does not load
// kernel modules.
func Supported() (bool, error) {
	data, err := os.ReadFile(filesystemsPath)
	if err != nil {
		return false, fmt.Errorf("aufs backend: read %s: %w", filesystemsPath, classify(err))
	}
	return hasFilesystem(data, "aufs"), nil
}

// hasFilesystem reports whether the /proc/filesystems text lists name
// (lines are "nodev\tname" or "\tname").
func hasFilesystem(procFilesystems []byte, name string) bool {
	sc := bufio.NewScanner(bytes.NewReader(procFilesystems))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

// errNoAufs is the error of Check and Provision on a kernel without aufs.
var errNoAufs = fmt.Errorf("the kernel has no aufs (not in %s); use overlay or copy: %w", filesystemsPath, errdefs.ErrFailedPrecondition)

// Check returns nil when the kernel has aufs, else an error of class
// ErrFailedPrecondition saying so, for the agent to refuse to start when
// aufs is asked for.
func Check() error {
	ok, err := Supported()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("aufs backend: %w", errNoAufs)
	}
	return nil
}

// Options tune a Backend.
type Options struct {
	// Logger receives the warnings of Destroy (a busy mount detached);
	// nil logs nothing.
	Logger *zap.Logger
	// PageSize is the mount(2) option limit, in bytes with the trailing
	// NUL (0: the system's page size). Tests lower it.
	PageSize int
}

// Backend is the aufs backend: each rootfs is an aufs union of the image
// layers (read-only branches, shared between containers) under a writable
// branch of its own. It keeps no state and is safe for concurrent use.
// Provision fails with ErrFailedPrecondition on a kernel without aufs
// (most kernels: aufs was never merged upstream).
type Backend struct {
	logger   *zap.Logger
	pageSize int
}

// New returns an aufs backend with default options. It never fails, even
// on a kernel without aufs: use Check for that.
func New() *Backend { return NewWithOptions(Options{}) }

// NewWithOptions returns an aufs backend tuned by o.
func NewWithOptions(o Options) *Backend {
	l := o.Logger
	if l == nil {
		l = zap.NewNop()
	}
	ps := o.PageSize
	if ps <= 0 {
		ps = unix.Getpagesize()
	}
	return &Backend{logger: l, pageSize: ps}
}

// Name returns "aufs".
func (b *Backend) Name() string { return Name }

// Provision mounts an aufs of layers (bottom first; directories with AUFS
// whiteouts, never modified) on rootfs, which must not exist; its parent
// is created if needed. A layer listed more than once is stacked once, at
// its topmost position (the same union; see dedupe). The writable branch
// is <backendDir>/scratch/<id>/workdir (id = the base name of rootfs),
// returned as the ephemeral path. On a kernel without aufs it fails with
// ErrFailedPrecondition before creating anything. A failed or cancelled
// Provision leaves nothing behind.
func (b *Backend) Provision(ctx context.Context, layers []string, rootfs, backendDir string) ([]string, error) {
	p, err := checkPaths(rootfs, backendDir)
	if err != nil {
		return nil, err
	}
	layers = union.Dedupe(layers)
	if err := checkLayers(layers, p.Rootfs); err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, err)
	}
	plan, err := planMount(layers, p, b.pageSize)
	if err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, err)
	}
	if ok, err := Supported(); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, errNoAufs)
	}
	if err := os.MkdirAll(filepath.Dir(p.Rootfs), 0o755); err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, classify(err))
	}
	if err := unix.Mkdir(p.Rootfs, 0o755); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("aufs backend: provision %s: rootfs exists: %w", p.Rootfs, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("aufs backend: provision %s: mkdir: %w", p.Rootfs, classify(err))
	}
	mounted := false
	fail := func(err error) ([]string, error) {
		if cerr := union.Undo(p.Dirs, mounted); cerr != nil {
			err = errors.Join(err, fmt.Errorf("aufs backend: cleaning up after the failure: %w", cerr))
		}
		return nil, err
	}
	if err := makeScratch(p); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, err))
	}
	if err := mountAufs(plan, p.Links, p.Rootfs); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: %w", p.Rootfs, err))
	}
	mounted = true
	if err := unix.Mount("", p.Rootfs, "", unix.MS_PRIVATE, ""); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: make private: %w", p.Rootfs, classify(err)))
	}
	return []string{p.rw}, nil
}

// makeScratch creates the writable branch of p, after removing what a
// Provision of the same rootfs that crashed may have left.
func makeScratch(p paths) error {
	for _, d := range []string{p.Scratch, p.Links} {
		if _, err := pmount.RemoveDir(d); err != nil {
			return err
		}
	}
	for _, d := range []string{filepath.Dir(p.Scratch), filepath.Dir(p.Links)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, classify(err))
		}
	}
	if err := os.Mkdir(p.Scratch, 0o700); err != nil {
		return fmt.Errorf("create scratch: %w", classify(err))
	}
	if err := os.Mkdir(p.rw, 0o755); err != nil {
		return fmt.Errorf("create the writable branch: %w", classify(err))
	}
	return nil
}

// mountAufs creates the plan's symlinks in linksDir, then
// mount("none", target, "aufs", 0, plan.data), on a thread whose working
// directory is plan.cwd when the plan names branches relatively.
func mountAufs(plan mountPlan, linksDir, target string) error {
	return union.MountWithLinks(Name, plan.links, linksDir, plan.cwd, func() error {
		if err := unix.Mount("none", target, "aufs", 0, plan.data); err != nil {
			return fmt.Errorf("mount aufs (%d-byte options) onto %s: %w", len(plan.data), target, classify(err))
		}
		return nil
	})
}

// Destroy unmounts rootfs (every mount at or below it, found in
// /proc/self/mountinfo, so a fresh Backend cleans up after an agent
// restart), removes the rootfs dir and the rootfs's scratch and links
// dirs. It works on any kernel: without aufs there is simply nothing
// mounted. existed is false when none of these existed. The rootfs dir is
// only ever rmdir'ed: if it is not empty once unmounted, Destroy fails
// with ErrFailedPrecondition and leaves it.
func (b *Backend) Destroy(ctx context.Context, rootfs, backendDir string) (bool, error) {
	p, err := checkPaths(rootfs, backendDir)
	if err != nil {
		return false, err
	}
	return union.Destroy(ctx, Name, p.Dirs, backend.BusyMountLogger(b.logger))
}

// checkPaths cleans rootfs and backendDir, checks that both are absolute
// and that rootfs is not "/", and returns the rootfs's paths.
func checkPaths(rootfs, backendDir string) (paths, error) {
	d, err := union.CheckPaths(Name, rootfs, backendDir)
	if err != nil {
		return paths{}, err
	}
	return extend(d), nil
}

// checkLayers checks that there is at least one layer, that each is an
// absolute path to a directory, and that none overlaps the rootfs.
func checkLayers(layers []string, rootfs string) error {
	return union.CheckLayers(Name, layers, rootfs)
}
