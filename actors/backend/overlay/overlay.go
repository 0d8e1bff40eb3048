package overlay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/process/errdefs"
	pmount "github.com/berthrt/berth/process/mount"
)

// Name is the overlay backend's registry key.
const Name = "overlay"

// MountAPI selects how Provision mounts the overlay.
type MountAPI int

const (
	// MountAuto uses fsconfig "lowerdir+" when the kernel has it (probed
	// once per Backend), else MountLegacy.
	MountAuto MountAPI = iota
	// MountFsconfig always uses fsopen/fsconfig/fsmount/move_mount with
	// one "lowerdir+" per layer; Provision fails with
	// ErrFailedPrecondition on a kernel without it.
	MountFsconfig
	// MountLegacy always uses mount(2) with a lowerdir= option string,
	// through short symlinks when the layers' paths do not fit in a page.
	MountLegacy
)

// String returns the API's name.
func (m MountAPI) String() string {
	switch m {
	case MountAuto:
		return "auto"
	case MountFsconfig:
		return "fsconfig"
	case MountLegacy:
		return "legacy"
	}
	return fmt.Sprintf("MountAPI(%d)", int(m))
}

// Options tune a Backend.
type Options struct {
	// Mount selects the mount API (default MountAuto). MountLegacy exists
	// for kernels without "lowerdir+" and so that tests cover that path on
	// kernels that have it.
	Mount MountAPI
	// Logger receives the warnings of Destroy (a busy mount detached);
	// nil logs nothing.
	Logger *zap.Logger
	// PageSize is the mount(2) option limit of the legacy path, in bytes
	// with the trailing NUL (0: the system's page size). Tests lower it.
	PageSize int
}

// Backend is the overlay backend: each rootfs is an overlayfs mount of the
// image layers (read-only lower dirs, shared between containers) under a
// per-rootfs upper dir that takes the container's writes. It keeps no
// state between calls besides a probe of the kernel, and is safe for
// concurrent use.
type Backend struct {
	opts   Options
	logger *zap.Logger

	probe      sync.Once
	lowerdirOK bool // the kernel has fsconfig "lowerdir+" (after probe)
}

// New returns an overlay backend with default options.
func New() *Backend { return NewWithOptions(Options{}) }

// NewWithOptions returns an overlay backend tuned by o.
func NewWithOptions(o Options) *Backend {
	if o.PageSize <= 0 {
		o.PageSize = unix.Getpagesize()
	}
	l := o.Logger
	if l == nil {
		l = zap.NewNop()
	}
	return &Backend{opts: o, logger: l}
}

// Name returns "overlay".
func (b *Backend) Name() string { return Name }

// API returns the mount API Provision uses: MountFsconfig or MountLegacy
// (MountAuto resolved by probing the kernel once), for the agent's log.
// With MountFsconfig asked on a kernel without it, it returns
// MountFsconfig and Provision fails.
func (b *Backend) API() MountAPI {
	if b.opts.Mount == MountLegacy {
		return MountLegacy
	}
	b.probe.Do(func() { b.lowerdirOK = probeLowerdirAdd() })
	if b.lowerdirOK || b.opts.Mount == MountFsconfig {
		return MountFsconfig
	}
	return MountLegacy
}

// useFsconfig reports whether Provision mounts with fsconfig, and fails
// when MountFsconfig was asked of a kernel without it.
func (b *Backend) useFsconfig() (bool, error) {
	api := b.API()
	if api == MountFsconfig && !b.lowerdirOK {
		return false, fmt.Errorf("the kernel's overlayfs has no fsconfig \"lowerdir+\": %w", errdefs.ErrFailedPrecondition)
	}
	return api == MountFsconfig, nil
}

// Provision mounts an overlay of layers (bottom first; directories in
// overlay whiteout form, never modified) on rootfs, which must not exist;
// its parent is created if needed. A layer listed more than once is
// stacked once, at its topmost position (the same view; see dedupe). The
// upper and work dirs are created in <backendDir>/scratch/<id> (id = the
// base name of rootfs) and returned as the ephemeral paths: they hold
// everything the container writes. A failed or cancelled Provision leaves
// nothing behind.
func (b *Backend) Provision(ctx context.Context, layers []string, rootfs, backendDir string) ([]string, error) {
	p, err := checkPaths(rootfs, backendDir)
	if err != nil {
		return nil, err
	}
	layers = dedupe(layers)
	if err := checkLayers(layers, p.rootfs); err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err)
	}
	fsconfig, err := b.useFsconfig()
	if err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err)
	}
	var legacy legacyPlan
	if !fsconfig {
		if legacy, err = planLegacy(layers, p, b.opts.PageSize); err != nil {
			return nil, fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.rootfs), 0o755); err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, classify(err))
	}
	if err := unix.Mkdir(p.rootfs, 0o755); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("overlay backend: provision %s: rootfs exists: %w", p.rootfs, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("overlay backend: provision %s: mkdir: %w", p.rootfs, classify(err))
	}
	mounted := false
	fail := func(err error) ([]string, error) {
		if cerr := undo(p, mounted); cerr != nil {
			err = errors.Join(err, fmt.Errorf("overlay backend: cleaning up after the failure: %w", cerr))
		}
		return nil, err
	}
	if err := makeScratch(p); err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err))
	}
	if fsconfig {
		err = mountFsconfig(fsconfigPlan(layers, p), p.rootfs)
	} else {
		err = mountLegacy(legacy, p.links, p.rootfs)
	}
	if err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err))
	}
	mounted = true
	if err := makePrivate(p.rootfs); err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.rootfs, err))
	}
	return []string{p.upper, p.work}, nil
}

// makeScratch creates the upper and work dirs of p, after removing what a
// Provision of the same rootfs that crashed may have left (the rootfs did
// not exist, so nothing can be using them).
func makeScratch(p paths) error {
	for _, d := range []string{p.scratch, p.links} {
		if _, err := pmount.RemoveDir(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.scratch), 0o755); err != nil {
		return fmt.Errorf("create scratch: %w", classify(err))
	}
	if err := os.MkdirAll(filepath.Dir(p.links), 0o755); err != nil {
		return fmt.Errorf("create links: %w", classify(err))
	}
	// 0700: nothing but the overlay (which uses the mounter's credentials)
	// needs to reach the container's files through the scratch path.
	if err := os.Mkdir(p.scratch, 0o700); err != nil {
		return fmt.Errorf("create scratch: %w", classify(err))
	}
	// The upper dir's root is the rootfs's root: 0755 like an image's.
	if err := os.Mkdir(p.upper, 0o755); err != nil {
		return fmt.Errorf("create upperdir: %w", classify(err))
	}
	if err := os.Mkdir(p.work, 0o700); err != nil {
		return fmt.Errorf("create workdir: %w", classify(err))
	}
	return nil
}

// undo removes what a failed Provision created: the mount (detached, as
// nothing can be using it yet), the rootfs dir, the scratch and links dirs.
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
// dirs. existed is false when none of these existed. The rootfs dir is
// only ever rmdir'ed, never removed recursively: if it is not empty once
// unmounted, Destroy fails with ErrFailedPrecondition and leaves it.
func (b *Backend) Destroy(ctx context.Context, rootfs, backendDir string) (bool, error) {
	p, err := checkPaths(rootfs, backendDir)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("overlay backend: destroy %s: %w", p.rootfs, err)
	}
	existed := false
	real, err := pmount.ResolvePath(p.rootfs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No rootfses dir: nothing is mounted; scratch may still exist.
	case err != nil:
		return false, fmt.Errorf("overlay backend: destroy %s: %w", p.rootfs, classify(err))
	default:
		n, err := pmount.UnmountAll(real, backend.BusyMountLogger(b.logger))
		existed = n > 0
		if err != nil {
			return existed, fmt.Errorf("overlay backend: destroy %s: %w", p.rootfs, err)
		}
		switch err := unix.Rmdir(real); {
		case err == nil:
			existed = true
		case errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
			return true, fmt.Errorf("overlay backend: destroy %s: not a mount and not empty; left alone: %w", p.rootfs, errdefs.ErrFailedPrecondition)
		default:
			return true, fmt.Errorf("overlay backend: destroy %s: rmdir: %w", p.rootfs, classify(err))
		}
	}
	if err := checkNoMounts(p.scratch, p.links); err != nil {
		return true, fmt.Errorf("overlay backend: destroy %s: %w", p.rootfs, err)
	}
	for _, d := range []string{p.scratch, p.links} {
		gone, err := pmount.RemoveDir(d)
		existed = existed || gone
		if err != nil {
			return existed, fmt.Errorf("overlay backend: destroy %s: %w", p.rootfs, err)
		}
	}
	return existed, nil
}

// checkNoMounts fails with ErrFailedPrecondition when anything is mounted
// at or below one of dirs: removing them recursively would then remove
// files of whatever is mounted there.
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
		return paths{}, fmt.Errorf("overlay backend: rootfs %q is not absolute: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(backendDir) {
		return paths{}, fmt.Errorf("overlay backend: backend dir %q is not absolute: %w", backendDir, errdefs.ErrInvalidArgument)
	}
	rootfs, backendDir = filepath.Clean(rootfs), filepath.Clean(backendDir)
	if rootfs == "/" {
		return paths{}, fmt.Errorf("overlay backend: rootfs cannot be /: %w", errdefs.ErrInvalidArgument)
	}
	return pathsFor(rootfs, backendDir), nil
}

// checkLayers checks that there is at least one layer and at most
// MaxLayers, that each is an absolute path to a directory, and that none
// is the rootfs or contains it, or lies inside it.
func checkLayers(layers []string, rootfs string) error {
	if len(layers) == 0 {
		return fmt.Errorf("no layers: %w", errdefs.ErrInvalidArgument)
	}
	if len(layers) > MaxLayers {
		return fmt.Errorf("%d layers: overlayfs stacks at most %d: %w", len(layers), MaxLayers, errdefs.ErrInvalidArgument)
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
