package archive

import (
	"archive/tar"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// invalid is the error for an entry a layer must not contain.
func invalid(hdr *tar.Header, format string, args ...any) error {
	return fmt.Errorf("archive: entry %s: %s: %w", quoteName(hdr.Name), fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// fsErr is the error for a failed system call while applying an entry; it
// wraps both the errno and its class.
func fsErr(hdr *tar.Header, op string, err error) error {
	return fmt.Errorf("archive: entry %s: %s: %w (%w)", quoteName(hdr.Name), op, err, errClass(err))
}

// errClass maps an errno met while applying a layer to an errdefs class.
// Errors that the layer's own contents cause (a name that is not a
// directory, too long, a link to a missing file) are invalid arguments.
func errClass(err error) error {
	if errors.Is(err, errdefs.ErrFailedPrecondition) {
		return errdefs.ErrFailedPrecondition
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return errdefs.ErrInternal
	}
	switch errno {
	case unix.ENOSPC, unix.EDQUOT, unix.ENOMEM, unix.EMFILE, unix.ENFILE:
		return errdefs.ErrResourceExhausted
	case unix.EPERM, unix.EACCES:
		return errdefs.ErrPermissionDenied
	case unix.EOPNOTSUPP, unix.EROFS:
		return errdefs.ErrFailedPrecondition
	case unix.ENOTDIR, unix.ELOOP, unix.EXDEV, unix.ENAMETOOLONG, unix.EEXIST, unix.ENOENT,
		unix.EMLINK, unix.EINVAL, unix.ERANGE, unix.E2BIG, unix.ENOTEMPTY, unix.EISDIR:
		return errdefs.ErrInvalidArgument
	}
	return errdefs.ErrInternal
}

// resolveErr explains why the directory of an entry could not be opened.
func resolveErr(hdr *tar.Header, what, dir string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return invalid(hdr, "%s %s goes through a symlink (a layer may not write through a symlink)", what, quoteName(dir))
	case errors.Is(err, unix.ENOTDIR):
		return invalid(hdr, "%s %s goes through a non-directory", what, quoteName(dir))
	case errors.Is(err, unix.EXDEV):
		return invalid(hdr, "%s %s leaves the layer", what, quoteName(dir))
	}
	return fsErr(hdr, "open "+what+" "+quoteName(dir), err)
}
