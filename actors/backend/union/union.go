// Package union holds what the backends that stack layers in one union
// mount (overlay, aufs) share: the rootfs's scratch layout, the argument
// checks, the layer order, and the undo and destroy of a mount with its
// scratch space. How to mount is each backend's own; this is plain Go.
package union

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
	pmount "github.com/berthrt/berth/process/mount"
)

// Dirs are a rootfs's mount point and the directories a union backend
// keeps beside it.
type Dirs struct {
	// Rootfs is the mount point, <backendDir>/rootfses/<id>.
	Rootfs string
	// ID is filepath.Base(Rootfs).
	ID string
	// Scratch is <backendDir>/scratch/<id>, holding the writable branch.
	Scratch string
	// Links is <backendDir>/links/<id>, holding the short symlinks 0..N-1
	// to the layers when the mount's option string needs them.
	Links string
}

// DirsFor returns the dirs of rootfs (clean, absolute) in backendDir
// (clean, absolute).
func DirsFor(rootfs, backendDir string) Dirs {
	id := filepath.Base(rootfs)
	return Dirs{
		Rootfs:  rootfs,
		ID:      id,
		Scratch: filepath.Join(backendDir, "scratch", id),
		Links:   filepath.Join(backendDir, "links", id),
	}
}

// CheckPaths cleans rootfs and backendDir, checks that both are absolute
// and that rootfs is not "/", and returns the rootfs's dirs. name is the
// backend's, for the errors.
func CheckPaths(name, rootfs, backendDir string) (Dirs, error) {
	if !filepath.IsAbs(rootfs) {
		return Dirs{}, fmt.Errorf("%s backend: rootfs %q is not absolute: %w", name, rootfs, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(backendDir) {
		return Dirs{}, fmt.Errorf("%s backend: backend dir %q is not absolute: %w", name, backendDir, errdefs.ErrInvalidArgument)
	}
	rootfs, backendDir = filepath.Clean(rootfs), filepath.Clean(backendDir)
	if rootfs == "/" {
		return Dirs{}, fmt.Errorf("%s backend: rootfs cannot be /: %w", name, errdefs.ErrInvalidArgument)
	}
	return DirsFor(rootfs, backendDir), nil
}

// CheckLayers checks that there is at least one layer, that each is an
// absolute path to a directory, and that none is the rootfs or contains
// it, or lies inside it. name is the backend's, for the errors.
func CheckLayers(name string, layers []string, rootfs string) error {
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
			return fmt.Errorf("layer %d (%s): %w", i, l, pmount.Classify(err, name))
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

// Dedupe returns layers (bottom first) with every repeated path kept only
// at its topmost position. Overlayfs refuses a lower dir given twice
// ("conflicting lowerdir path", ELOOP), aufs a branch given twice, and the
// store does give the same layer twice when an image repeats a diff (the
// 1 KiB empty tar of older Docker images, sha256:5f70bf18..., often appears
// several times). The merged view is unchanged: in A-over-X-over-A, every
// entry of the lower A is shadowed by the same entry of the upper A, and
// whatever X hides of the lower A the upper A shows again, so it is
// exactly A over X.
func Dedupe(layers []string) []string {
	seen := make(map[string]bool, len(layers))
	out := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		c := filepath.Clean(layers[i])
		if !seen[c] {
			seen[c] = true
			out = append(out, layers[i])
		}
	}
	slices.Reverse(out)
	return out
}

// TopFirst returns layers (bottom first, as the store gives them) in the
// order union filesystems want their branches: topmost first.
func TopFirst(layers []string) []string {
	out := slices.Clone(layers)
	slices.Reverse(out)
	return out
}

// MountWithLinks creates the symlinks linksDir/0..N-1 to links (none when
// links is nil), then runs mount, on a thread whose working directory is
// cwd when it is set: a mount whose option string would not fit in a page
// names the layers by those short relative links instead. name is the
// backend's, for the errors.
func MountWithLinks(name string, links []string, linksDir, cwd string, mount func() error) error {
	if links != nil {
		if err := os.Mkdir(linksDir, 0o700); err != nil {
			return fmt.Errorf("create links dir: %w", pmount.Classify(err, name))
		}
		for i, l := range links {
			if err := os.Symlink(l, filepath.Join(linksDir, strconv.Itoa(i))); err != nil {
				return fmt.Errorf("link layer %d: %w", i, pmount.Classify(err, name))
			}
		}
	}
	if cwd == "" {
		return mount()
	}
	return pmount.InDir(cwd, mount)
}

// Undo removes what a failed Provision created: the mount (detached, as
// nothing can be using it yet), the rootfs dir, the scratch and links dirs.
func Undo(d Dirs, mounted bool) error {
	var errs []error
	if mounted {
		if err := unix.Unmount(d.Rootfs, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", d.Rootfs, err))
		}
	}
	if err := unix.Rmdir(d.Rootfs); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("rmdir %s: %w", d.Rootfs, err))
	}
	for _, dir := range []string{d.Scratch, d.Links} {
		if _, err := pmount.RemoveDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Destroy unmounts d.Rootfs (every mount at or below it, found in
// /proc/self/mountinfo, so a fresh backend cleans up after an agent
// restart), removes the rootfs dir and the scratch and links dirs. It works
// on any kernel: without the filesystem there is simply nothing mounted.
// existed is false when none of these existed. The rootfs dir is only ever
// rmdir'ed, never removed recursively: if it is not empty once unmounted,
// Destroy fails with ErrFailedPrecondition and leaves it. name is the
// backend's, for the errors; busy is told each mount that had to be
// detached.
func Destroy(ctx context.Context, name string, d Dirs, busy func(mountPoint string)) (bool, error) {
	fail := func(existed bool, err error) (bool, error) {
		return existed, fmt.Errorf("%s backend: destroy %s: %w", name, d.Rootfs, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(false, err)
	}
	existed := false
	real, err := pmount.ResolvePath(d.Rootfs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No rootfses dir: nothing is mounted; scratch may still exist.
	case err != nil:
		return fail(false, pmount.Classify(err, name))
	default:
		n, err := pmount.UnmountAll(real, busy)
		existed = n > 0
		if err != nil {
			return fail(existed, err)
		}
		switch err := unix.Rmdir(real); {
		case err == nil:
			existed = true
		case errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
			return fail(true, fmt.Errorf("not a mount and not empty; left alone: %w", errdefs.ErrFailedPrecondition))
		default:
			return fail(true, fmt.Errorf("rmdir: %w", pmount.Classify(err, name)))
		}
	}
	if err := checkNoMounts(name, d.Scratch, d.Links); err != nil {
		return fail(true, err)
	}
	for _, dir := range []string{d.Scratch, d.Links} {
		gone, err := pmount.RemoveDir(dir)
		existed = existed || gone
		if err != nil {
			return fail(existed, err)
		}
	}
	return existed, nil
}

// checkNoMounts fails with ErrFailedPrecondition when anything is mounted
// at or below one of dirs: removing them recursively would then remove
// files of whatever is mounted there.
func checkNoMounts(name string, dirs ...string) error {
	var roots []string
	for _, d := range dirs {
		r, err := pmount.ResolvePath(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return pmount.Classify(err, name)
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
