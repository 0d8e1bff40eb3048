package copyfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// Name is the copy backend's registry key.
const Name = "copy"

// Options tune a Backend.
type Options struct {
	// Parallelism bounds the directories and file copies in flight within
	// a layer, and the directories removed at once by Destroy (0: twice the
	// number of CPUs).
	Parallelism int
}

// Backend is the copy backend: it stacks layers by copying them, in order,
// into a plain directory. It holds no state between calls and is safe for
// concurrent use.
type Backend struct {
	parallelism int
}

// New returns a copy backend with default options.
func New() *Backend { return NewWithOptions(Options{}) }

// NewWithOptions returns a copy backend tuned by o.
func NewWithOptions(o Options) *Backend {
	p := o.Parallelism
	if p <= 0 {
		p = 2 * runtime.NumCPU()
	}
	return &Backend{parallelism: p}
}

// Name returns "copy".
func (b *Backend) Name() string { return Name }

// Provision copies layers (bottom first) into rootfs, which must not exist;
// its parent is created if needed. Each layer's whiteouts are applied
// against the tree built so far, then its contents are copied. A failed or
// cancelled Provision removes the partial rootfs. The copy backend has no
// ephemeral paths: the container writes into rootfs itself. backendDir is
// not used.
func (b *Backend) Provision(ctx context.Context, layers []string, rootfs, backendDir string) ([]string, error) {
	if len(layers) == 0 {
		return nil, fmt.Errorf("copy backend: provision %s: no layers: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	rootfs, err := checkPaths(rootfs, layers)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("copy backend: provision %s: %w", rootfs, err)
	}
	srcs, err := openLayers(layers)
	if err != nil {
		return nil, err
	}
	defer closeAll(srcs)
	pfd, base, err := openParent(rootfs, true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	if err := retryEINTR(func() error { return unix.Mkdirat(pfd, base, 0o755) }); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("copy backend: provision %s: rootfs exists: %w", rootfs, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("copy backend: provision %s: mkdir: %w", rootfs, classify(err))
	}
	if err := b.fill(ctx, pfd, base, srcs); err != nil {
		if rmErr := removeRootfs(context.WithoutCancel(ctx), pfd, base, rootfs, b.parallelism); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("copy backend: removing partial rootfs: %w", rmErr))
		}
		return nil, err
	}
	return nil, nil
}

// fill opens the new, empty rootfs base under pfd and applies the layers
// open at srcs to it, one after the other.
func (b *Backend) fill(ctx context.Context, pfd int, base string, srcs []int) error {
	rootfd, err := unix.Openat(pfd, base, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("copy backend: open rootfs: %w", err)
	}
	defer unix.Close(rootfd)
	mnt, _, err := statMount(rootfd, "")
	if err != nil {
		return fmt.Errorf("copy backend: statx rootfs: %w", err)
	}
	p := &provision{
		rootfd:      rootfd,
		mnt:         mnt,
		parallelism: b.parallelism,
		meta:        metaSetter{rootless: os.Geteuid() != 0},
	}
	for i, fd := range srcs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("copy backend: layer %d: %w", i, err)
		}
		if err := p.applyLayer(ctx, i, fd); err != nil {
			return err
		}
	}
	return nil
}

// Destroy removes rootfs and everything below it, fd by fd: symlinks are
// removed, never followed, and a mount point anywhere in the tree (or
// rootfs itself being one) stops it with ErrFailedPrecondition, naming the
// mount, before anything on that mount is touched. existed is false when
// rootfs does not exist. backendDir is not used: the copy backend keeps no
// scratch space.
func (b *Backend) Destroy(ctx context.Context, rootfs, backendDir string) (bool, error) {
	rootfs, err := checkPaths(rootfs, nil)
	if err != nil {
		return false, err
	}
	pfd, base, err := openParent(rootfs, false)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unix.Close(pfd)
	if _, _, err := statMount(pfd, base); errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	mounts, err := mountsUnder(pfd, base)
	if err != nil {
		return true, fmt.Errorf("copy backend: destroy %s: %w", rootfs, err)
	}
	if len(mounts) > 0 {
		return true, fmt.Errorf("copy backend: destroy %s: mounts inside (unmount them first): %s: %w",
			rootfs, strings.Join(mounts, ", "), errdefs.ErrFailedPrecondition)
	}
	if err := removeRootfs(ctx, pfd, base, rootfs, b.parallelism); err != nil {
		return true, err
	}
	return true, nil
}

// removeRootfs removes base under pfd (the rootfs, named path in errors).
//
// Sequence: statx(pfd, "", AT_EMPTY_PATH) and statx(pfd, base,
// AT_SYMLINK_NOFOLLOW) for the mounts; a non-directory is unlinked; a
// directory on another mount than its parent is refused; otherwise
// remover.removeDir(pfd, base), which refuses to cross any mount below.
func removeRootfs(ctx context.Context, pfd int, base, path string, parallelism int) error {
	pm, _, err := statMount(pfd, "")
	if err != nil {
		return fmt.Errorf("copy backend: destroy %s: statx parent: %w", path, err)
	}
	m, typ, err := statMount(pfd, base)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy backend: destroy %s: statx: %w", path, err)
	}
	if typ == unix.S_IFDIR && crossesMount(pm, m) {
		return fmt.Errorf("copy backend: destroy: %w", errMount(path))
	}
	if err := newRemover(ctx, pm, parallelism).removeEntry(pfd, base, path); err != nil {
		if isContextErr(err) {
			return fmt.Errorf("copy backend: destroy %s: %w", path, err)
		}
		return fmt.Errorf("copy backend: destroy: %w", err)
	}
	return nil
}

// checkPaths cleans rootfs and checks that it is absolute, not "/", and
// neither inside nor above any layer (a copy into its own source would
// never end).
func checkPaths(rootfs string, layers []string) (string, error) {
	if !filepath.IsAbs(rootfs) {
		return "", fmt.Errorf("copy backend: rootfs %q is not absolute: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	rootfs = filepath.Clean(rootfs)
	if rootfs == "/" {
		return "", fmt.Errorf("copy backend: rootfs cannot be /: %w", errdefs.ErrInvalidArgument)
	}
	for i, l := range layers {
		abs, err := filepath.Abs(l)
		if err != nil {
			return "", fmt.Errorf("copy backend: layer %d: %w", i, err)
		}
		if within(rootfs, abs) || within(abs, rootfs) {
			return "", fmt.Errorf("copy backend: layer %d (%s) overlaps rootfs %s: %w", i, l, rootfs, errdefs.ErrInvalidArgument)
		}
	}
	return rootfs, nil
}

// within reports whether p is dir or below it (both clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// openLayers opens every layer root directory. The layer paths come from
// the store, so a symlink in them is followed; inside a layer nothing is.
func openLayers(layers []string) ([]int, error) {
	fds := make([]int, 0, len(layers))
	for i, l := range layers {
		fd, err := unix.Open(l, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(fds)
			switch {
			case errors.Is(err, unix.ENOENT):
				err = fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
			case errors.Is(err, unix.ENOTDIR):
				err = fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
			}
			return nil, fmt.Errorf("copy backend: layer %d (%s): %w", i, l, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// openParent opens the directory holding rootfs (creating it first when
// create is set) and returns it with rootfs's base name. The parent path is
// the provisioner's own (<backendDir>/rootfses), so it is resolved normally;
// everything from rootfs down is reached through descriptors only.
func openParent(rootfs string, create bool) (int, string, error) {
	dir, base := filepath.Split(rootfs)
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return -1, "", fmt.Errorf("copy backend: create %s: %w", dir, classify(err))
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, "", err
		}
		return -1, "", fmt.Errorf("copy backend: open %s: %w", dir, err)
	}
	return fd, base, nil
}
