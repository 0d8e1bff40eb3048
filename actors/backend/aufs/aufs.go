package aufs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
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
	layers = dedupe(layers)
	if err := checkLayers(layers, p.rootfs); err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, err)
	}
	plan, err := planMount(layers, p, b.pageSize)
	if err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, err)
	}
	if ok, err := Supported(); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, errNoAufs)
	}
	if err := os.MkdirAll(filepath.Dir(p.rootfs), 0o755); err != nil {
		return nil, fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, classify(err))
	}
	if err := unix.Mkdir(p.rootfs, 0o755); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("aufs backend: provision %s: rootfs exists: %w", p.rootfs, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("aufs backend: provision %s: mkdir: %w", p.rootfs, classify(err))
	}
	mounted := false
	fail := func(err error) ([]string, error) {
		if cerr := undo(p, mounted); cerr != nil {
			err = errors.Join(err, fmt.Errorf("aufs backend: cleaning up after the failure: %w", cerr))
		}
		return nil, err
	}
	if err := makeScratch(p); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, err))
	}
	if err := mountAufs(plan, p.links, p.rootfs); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: %w", p.rootfs, err))
	}
	mounted = true
	if err := unix.Mount("", p.rootfs, "", unix.MS_PRIVATE, ""); err != nil {
		return fail(fmt.Errorf("aufs backend: provision %s: make private: %w", p.rootfs, classify(err)))
	}
	return []string{p.rw}, nil
}

// makeScratch creates the writable branch of p, after removing what a
// Provision of the same rootfs that crashed may have left.
func makeScratch(p paths) error {
	for _, d := range []string{p.scratch, p.links} {
		if _, err := pmount.RemoveDir(d); err != nil {
			return err
		}
	}
	for _, d := range []string{filepath.Dir(p.scratch), filepath.Dir(p.links)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, classify(err))
		}
	}
	if err := os.Mkdir(p.scratch, 0o700); err != nil {
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
	if plan.links != nil {
		if err := os.Mkdir(linksDir, 0o700); err != nil {
			return fmt.Errorf("create links dir: %w", classify(err))
		}
		for i, l := range plan.links {
			if err := os.Symlink(l, filepath.Join(linksDir, strconv.Itoa(i))); err != nil {
				return fmt.Errorf("link layer %d: %w", i, classify(err))
			}
		}
	}
	mount := func() error {
		if err := unix.Mount("none", target, "aufs", 0, plan.data); err != nil {
			return fmt.Errorf("mount aufs (%d-byte options) onto %s: %w", len(plan.data), target, classify(err))
		}
		return nil
	}
	if plan.cwd == "" {
		return mount()
	}
	return pmount.InDir(plan.cwd, mount)
}

// undo removes what a failed Provision created.
func undo(p paths, mounted bool) error {
	var errs []error
	if mounted {
		if err := unix.Unmount(p.rootfs, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p.rootfs, err))
		}
	}
	if err := unix.Rmdir(p.rootfs); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("rmdir %s: %w", p.rootfs, err))
	}
	for _, d := range []string{p.scratch, p.links} {
		if _, err := pmount.RemoveDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("aufs backend: destroy %s: %w", p.rootfs, err)
	}
	existed := false
	real, err := pmount.ResolvePath(p.rootfs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("aufs backend: destroy %s: %w", p.rootfs, classify(err))
	default:
		n, err := pmount.UnmountAll(real, backend.BusyMountLogger(b.logger))
		existed = n > 0
		if err != nil {
			return existed, fmt.Errorf("aufs backend: destroy %s: %w", p.rootfs, err)
		}
		switch err := unix.Rmdir(real); {
		case err == nil:
			existed = true
		case errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
			return true, fmt.Errorf("aufs backend: destroy %s: not a mount and not empty; left alone: %w", p.rootfs, errdefs.ErrFailedPrecondition)
		default:
			return true, fmt.Errorf("aufs backend: destroy %s: rmdir: %w", p.rootfs, classify(err))
		}
	}
	if err := checkNoMounts(p.scratch, p.links); err != nil {
		return true, fmt.Errorf("aufs backend: destroy %s: %w", p.rootfs, err)
	}
	for _, d := range []string{p.scratch, p.links} {
		gone, err := pmount.RemoveDir(d)
		existed = existed || gone
		if err != nil {
			return existed, fmt.Errorf("aufs backend: destroy %s: %w", p.rootfs, err)
		}
	}
	return existed, nil
}

// checkNoMounts fails with ErrFailedPrecondition when anything is mounted
// at or below one of dirs, which are about to be removed recursively.
func checkNoMounts(dirs ...string) error {
	var roots []string
	for _, d := range dirs {
		r, err := pmount.ResolvePath(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return classify(err)
		}
		roots = append(roots, r)
	}
	if len(roots) == 0 {
		return nil
	}
	mps, err := pmount.MountsUnder(roots...)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("mounts inside the scratch space (unmount them first): %v: %w", mps, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// checkPaths cleans rootfs and backendDir, checks that both are absolute
// and that rootfs is not "/", and returns the rootfs's paths.
func checkPaths(rootfs, backendDir string) (paths, error) {
	if !filepath.IsAbs(rootfs) {
		return paths{}, fmt.Errorf("aufs backend: rootfs %q is not absolute: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(backendDir) {
		return paths{}, fmt.Errorf("aufs backend: backend dir %q is not absolute: %w", backendDir, errdefs.ErrInvalidArgument)
	}
	rootfs, backendDir = filepath.Clean(rootfs), filepath.Clean(backendDir)
	if rootfs == "/" {
		return paths{}, fmt.Errorf("aufs backend: rootfs cannot be /: %w", errdefs.ErrInvalidArgument)
	}
	return pathsFor(rootfs, backendDir), nil
}

// checkLayers checks that there is at least one layer, that each is an
// absolute path to a directory, and that none overlaps the rootfs.
func checkLayers(layers []string, rootfs string) error {
	if len(layers) == 0 {
		return fmt.Errorf("no layers: %w", errdefs.ErrInvalidArgument)
	}
	for i, l := range layers {
		if !filepath.IsAbs(l) {
			return fmt.Errorf("layer %d (%s) is not an absolute path: %w", i, l, errdefs.ErrInvalidArgument)
		}
		c := filepath.Clean(l)
		if within(rootfs, c) || within(c, rootfs) {
			return fmt.Errorf("layer %d (%s) overlaps rootfs %s: %w", i, l, rootfs, errdefs.ErrInvalidArgument)
		}
		fi, err := os.Stat(l)
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, l, classify(err))
		}
		if !fi.IsDir() {
			return fmt.Errorf("layer %d (%s) is not a directory: %w", i, l, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// within reports whether p is dir or below it (both clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
