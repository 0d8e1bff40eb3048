package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/union"
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
	layers = union.Dedupe(layers)
	if err := checkLayers(layers, p.Rootfs); err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err)
	}
	fsconfig, err := b.useFsconfig()
	if err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err)
	}
	var legacy legacyPlan
	if !fsconfig {
		if legacy, err = planLegacy(layers, p, b.opts.PageSize); err != nil {
			return nil, fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.Rootfs), 0o755); err != nil {
		return nil, fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, classify(err))
	}
	if err := unix.Mkdir(p.Rootfs, 0o755); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("overlay backend: provision %s: rootfs exists: %w", p.Rootfs, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("overlay backend: provision %s: mkdir: %w", p.Rootfs, classify(err))
	}
	mounted := false
	fail := func(err error) ([]string, error) {
		if cerr := union.Undo(p.Dirs, mounted); cerr != nil {
			err = errors.Join(err, fmt.Errorf("overlay backend: cleaning up after the failure: %w", cerr))
		}
		return nil, err
	}
	if err := makeScratch(p); err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err))
	}
	if fsconfig {
		err = mountFsconfig(fsconfigPlan(layers, p), p.Rootfs)
	} else {
		err = mountLegacy(legacy, p.Links, p.Rootfs)
	}
	if err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err))
	}
	mounted = true
	if err := makePrivate(p.Rootfs); err != nil {
		return fail(fmt.Errorf("overlay backend: provision %s: %w", p.Rootfs, err))
	}
	return []string{p.upper, p.work}, nil
}

// makeScratch creates the upper and work dirs of p, after removing what a
// Provision of the same rootfs that crashed may have left (the rootfs did
// not exist, so nothing can be using them).
func makeScratch(p paths) error {
	for _, d := range []string{p.Scratch, p.Links} {
		if _, err := pmount.RemoveDir(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.Scratch), 0o755); err != nil {
		return fmt.Errorf("create scratch: %w", classify(err))
	}
	if err := os.MkdirAll(filepath.Dir(p.Links), 0o755); err != nil {
		return fmt.Errorf("create links: %w", classify(err))
	}
	// 0700: nothing but the overlay (which uses the mounter's credentials)
	// needs to reach the container's files through the scratch path.
	if err := os.Mkdir(p.Scratch, 0o700); err != nil {
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

// checkLayers checks that there is at least one layer and at most
// MaxLayers, that each is an absolute path to a directory, and that none
// is the rootfs or contains it, or lies inside it.
func checkLayers(layers []string, rootfs string) error {
	if len(layers) > MaxLayers {
		return fmt.Errorf("%d layers: overlayfs stacks at most %d: %w", len(layers), MaxLayers, errdefs.ErrInvalidArgument)
	}
	return union.CheckLayers(Name, layers, rootfs)
}
