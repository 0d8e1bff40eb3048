package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// copyData writes the contents of e to fd through the reusable buffer.
// Chunks of zero bytes become holes. Bytes written count against MaxBytes,
// so a sparse entry declaring a huge size cannot fill the disk.
func (x *extractor) copyData(e *entry, fd int) error {
	var off int64
	hole := false
	for {
		n, rerr := readFull(x.tr, x.buf)
		if n > 0 {
			x.written += int64(n)
			if x.written > x.opts.MaxBytes {
				return fmt.Errorf("archive: entry %s: regular files are over the %d byte limit: %w", quoteName(e.hdr.Name), x.opts.MaxBytes, errdefs.ErrResourceExhausted)
			}
			chunk := x.buf[:n]
			if isZero(chunk) {
				hole = true
			} else {
				if err := writeAt(fd, chunk, off, hole); err != nil {
					return fsErr(e.hdr, "write", err)
				}
				hole = false
			}
			off += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return x.stream.classify("entry "+quoteName(e.hdr.Name)+" contents", rerr)
		}
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("archive: entry %s: %w", quoteName(e.hdr.Name), err)
		}
	}
	if hole {
		if err := unix.Ftruncate(fd, off); err != nil {
			return fsErr(e.hdr, "ftruncate", err)
		}
	}
	x.res.Size += off
	return nil
}

// readFull reads into buf until it is full or r fails; unlike
// io.ReadFull, a short read at the end gives io.EOF, so that a truncated
// stream (io.ErrUnexpectedEOF from r) is told apart.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// writeAt writes b at the file offset, seeking there first after a hole.
func writeAt(fd int, b []byte, off int64, seek bool) error {
	if seek {
		if _, err := unix.Seek(fd, off, io.SeekStart); err != nil {
			return err
		}
	}
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
