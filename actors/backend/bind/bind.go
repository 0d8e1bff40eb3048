package bind

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/process/errdefs"
	pmount "github.com/berthrt/berth/process/mount"
)

// Name is the bind backend's registry key.
const Name = "bind"

// Options tune a Backend.
type Options struct {
	// Logger receives the warnings of Destroy (a busy mount detached);
	// nil logs nothing.
	Logger *zap.Logger
}

// Backend is the bind backend: the rootfs is a read-only bind mount of the
// image's single layer. It keeps no state and is safe for concurrent use.
type Backend struct {
	logger *zap.Logger
}

// New returns a bind backend with default options.
func New() *Backend { return NewWithOptions(Options{}) }

// NewWithOptions returns a bind backend tuned by o.
func NewWithOptions(o Options) *Backend {
	l := o.Logger
	if l == nil {
		l = zap.NewNop()
	}
	return &Backend{logger: l}
}

// Name returns "bind".
func (b *Backend) Name() string { return Name }

// Provision bind-mounts the image's only layer, read-only, on rootfs,
// which must not exist; its parent is created if needed. An image of more
// than one layer fails with ErrInvalidArgument. There are no ephemeral
// paths: the container cannot write to its rootfs. backendDir is not used.
// A failed or cancelled Provision leaves nothing behind.
func (b *Backend) Provision(ctx context.Context, layers []string, rootfs, backendDir string) ([]string, error) {
	rootfs, err := checkRootfs(rootfs)
	if err != nil {
		return nil, err
	}
	switch {
	case len(layers) == 0:
		return nil, fmt.Errorf("bind backend: provision %s: no layers: %w", rootfs, errdefs.ErrInvalidArgument)
	case len(layers) > 1:
		return nil, fmt.Errorf("bind backend: provision %s: the bind backend supports single-layer images only; this image has %d layers: use copy or overlay: %w",
			rootfs, len(layers), errdefs.ErrInvalidArgument)
	}
	layer := layers[0]
	if err := checkLayer(layer, rootfs); err != nil {
		return nil, fmt.Errorf("bind backend: provision %s: %w", rootfs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bind backend: provision %s: %w", rootfs, err)
	}
	if err := os.MkdirAll(filepath.Dir(rootfs), 0o755); err != nil {
		return nil, fmt.Errorf("bind backend: provision %s: %w", rootfs, classify(err))
	}
	if err := unix.Mkdir(rootfs, 0o755); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("bind backend: provision %s: rootfs exists: %w", rootfs, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("bind backend: provision %s: mkdir: %w", rootfs, classify(err))
	}
	if err := bindReadOnly(layer, rootfs); err != nil {
		err = fmt.Errorf("bind backend: provision %s: %w", rootfs, err)
		if rerr := unix.Rmdir(rootfs); rerr != nil {
			err = errors.Join(err, fmt.Errorf("bind backend: removing %s after the failure: %w", rootfs, rerr))
		}
		return nil, err
	}
	return nil, nil
}

// bindReadOnly mounts layer on rootfs, read-only and private:
//
//	mount(layer, rootfs, NULL, MS_BIND, NULL)
//	statfs(rootfs) → the flags the bind inherited from the layer's mount
//	mount(NULL, rootfs, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|<nosuid,nodev,noexec kept>, NULL)
//	mount(NULL, rootfs, NULL, MS_PRIVATE, NULL)
//
// A bind mount ignores MS_RDONLY, so read-only takes the remount, which
// changes only this mount's flags (MS_BIND|MS_REMOUNT), not the layer's
// filesystem. The remount sets every per-mount flag at once, so the
// nosuid, nodev and noexec the layer's mount has are passed again:
// dropping them would loosen the layer's mount options (and fails with
// EPERM where they are locked, in a user namespace); the atime flags are
// kept by the kernel when none is given. On any failure the mount is
// detached before returning.
func bindReadOnly(layer, rootfs string) error {
	if err := unix.Mount(layer, rootfs, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", layer, classify(err))
	}
	err := func() error {
		var st unix.Statfs_t
		if err := unix.Statfs(rootfs, &st); err != nil {
			return fmt.Errorf("statfs: %w", classify(err))
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
		for _, f := range [...]struct{ st, ms uintptr }{
			{unix.ST_NOSUID, unix.MS_NOSUID},
			{unix.ST_NODEV, unix.MS_NODEV},
			{unix.ST_NOEXEC, unix.MS_NOEXEC},
		} {
			if uintptr(st.Flags)&f.st != 0 {
				flags |= f.ms
			}
		}
		if err := unix.Mount("", rootfs, "", flags, ""); err != nil {
			return fmt.Errorf("remount read-only: %w", classify(err))
		}
		if err := unix.Mount("", rootfs, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make private: %w", classify(err))
		}
		return nil
	}()
	if err != nil {
		if uerr := unix.Unmount(rootfs, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); uerr != nil {
			err = errors.Join(err, fmt.Errorf("unmount after the failure: %w", uerr))
		}
	}
	return err
}

// Destroy unmounts rootfs (every mount at or below it, found in
// /proc/self/mountinfo, so a fresh Backend cleans up after an agent
// restart) and removes the empty mount point. existed is false when there
// was neither a mount nor a directory. The rootfs is only ever rmdir'ed:
// under the mount is the shared layer, so nothing is ever removed
// recursively; if the directory is not empty once unmounted, Destroy fails
// with ErrFailedPrecondition and leaves it. backendDir is not used.
func (b *Backend) Destroy(ctx context.Context, rootfs, backendDir string) (bool, error) {
	rootfs, err := checkRootfs(rootfs)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("bind backend: destroy %s: %w", rootfs, err)
	}
	real, err := pmount.ResolvePath(rootfs)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bind backend: destroy %s: %w", rootfs, classify(err))
	}
	n, err := pmount.UnmountAll(real, backend.BusyMountLogger(b.logger))
	existed := n > 0
	if err != nil {
		return existed, fmt.Errorf("bind backend: destroy %s: %w", rootfs, err)
	}
	switch err := unix.Rmdir(real); {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return existed, nil
	case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
		return true, fmt.Errorf("bind backend: destroy %s: not a mount and not empty; left alone: %w", rootfs, errdefs.ErrFailedPrecondition)
	default:
		return true, fmt.Errorf("bind backend: destroy %s: rmdir: %w", rootfs, classify(err))
	}
}

// checkRootfs cleans rootfs and checks that it is absolute and not "/".
func checkRootfs(rootfs string) (string, error) {
	if !filepath.IsAbs(rootfs) {
		return "", fmt.Errorf("bind backend: rootfs %q is not absolute: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	rootfs = filepath.Clean(rootfs)
	if rootfs == "/" {
		return "", fmt.Errorf("bind backend: rootfs cannot be /: %w", errdefs.ErrInvalidArgument)
	}
	return rootfs, nil
}

// checkLayer checks that layer is an absolute path to a directory that
// neither contains nor lies in rootfs.
func checkLayer(layer, rootfs string) error {
	if !filepath.IsAbs(layer) {
		return fmt.Errorf("layer %s is not an absolute path: %w", layer, errdefs.ErrInvalidArgument)
	}
	c := filepath.Clean(layer)
	if within(rootfs, c) || within(c, rootfs) {
		return fmt.Errorf("layer %s overlaps rootfs %s: %w", layer, rootfs, errdefs.ErrInvalidArgument)
	}
	fi, err := os.Stat(layer)
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer, classify(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("layer %s is not a directory: %w", layer, errdefs.ErrInvalidArgument)
	}
	return nil
}

// within reports whether p is dir or below it (both clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
