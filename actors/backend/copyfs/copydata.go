package copyfs

import (
	"context"
	"errors"
	"io"

	"golang.org/x/sys/unix"
)

// copyChunk bounds one copy_file_range call, so cancellation is noticed
// within a chunk's worth of work.
const copyChunk = 64 << 20

// rwBufSize is the buffer of the read/write fallback.
const rwBufSize = 256 << 10

// copyData copies the size bytes of the regular file open at src into the
// empty file open at dst. A file whose allocated blocks cover less than its
// size has holes: it goes through copySparse so the holes stay holes.
func copyData(ctx context.Context, src, dst int, size, blocks int64) error {
	if size <= 0 {
		return nil
	}
	if blocks*512 >= size {
		return copyRange(ctx, src, dst, 0, size)
	}
	return copySparse(ctx, src, dst, size)
}

// copySparse copies only the data extents of src.
//
// Sequence: loop { data = lseek(src, off, SEEK_DATA) (ENXIO: only a hole is
// left); hole = lseek(src, data, SEEK_HOLE); copy [data, hole) at the same
// offsets in dst; off = hole }; ftruncate(dst, size) extends dst over a
// trailing hole. A filesystem without SEEK_DATA support reports the whole
// file as data, or fails with EINVAL, in which case everything is copied.
func copySparse(ctx context.Context, src, dst int, size int64) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			if err := copyRange(ctx, src, dst, off, size-off); err != nil {
				return err
			}
			break
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(src, data, unix.SEEK_HOLE)
		if err != nil || hole > size {
			hole = size
		}
		if err := copyRange(ctx, src, dst, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return retryEINTR(func() error { return unix.Ftruncate(dst, size) })
}

// copyRange copies n bytes at offset off of src to the same offset of dst
// with copy_file_range(2), which copies inside the kernel and may reflink
// (btrfs, XFS) or copy server-side (NFS). Where the kernel cannot
// (EXDEV across filesystems, EINVAL/EOPNOTSUPP/ENOSYS on filesystems or
// kernels without support) or copies nothing (some pseudo filesystems report
// 0 bytes), the rest goes through plain pread/pwrite.
func copyRange(ctx context.Context, src, dst int, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := unix.CopyFileRange(src, &roff, dst, &woff, int(min(n, copyChunk)), 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case isNoCopyRange(err), err == nil && c == 0:
			return copyRW(ctx, src, dst, roff, n)
		case err != nil:
			return err
		}
		n -= int64(c)
	}
	return nil
}

// isNoCopyRange reports the copy_file_range errors that mean "not here".
func isNoCopyRange(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EPERM) || errors.Is(err, unix.ETXTBSY)
}

// copyRW copies n bytes at offset off of src to dst with pread/pwrite
// through io.CopyBuffer. A source shorter than expected ends the copy.
func copyRW(ctx context.Context, src, dst int, off, n int64) error {
	r := io.NewSectionReader(fdReaderAt(src), off, n)
	w := &fdWriter{ctx: ctx, fd: dst, off: off}
	_, err := io.CopyBuffer(w, r, make([]byte, rwBufSize))
	return err
}

// fdReaderAt reads a raw descriptor with pread, as io.ReaderAt.
type fdReaderAt int

// ReadAt implements io.ReaderAt: it fills p unless the file ends (io.EOF).
func (f fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		n, err := unix.Pread(int(f), p[total:], off+int64(total))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return total, err
		case n == 0:
			return total, io.EOF
		}
		total += n
	}
	return total, nil
}

// fdWriter writes a raw descriptor with pwrite from a running offset, and
// stops when ctx is done.
type fdWriter struct {
	ctx context.Context
	fd  int
	off int64
}

// Write implements io.Writer.
func (w *fdWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	total := 0
	for total < len(p) {
		n, err := unix.Pwrite(w.fd, p[total:], w.off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return total, err
		}
		total += n
		w.off += int64(n)
	}
	return total, nil
}
