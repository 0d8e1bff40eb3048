package launcher

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// SealedInit is a copy of the init binary in a sealed memfd (runc's defence
// against CVE-2019-5736): the inits of containers execute the copy, which
// nothing can write to, so a container that reaches its init's /proc/1/exe
// cannot overwrite the host's binary, nor the copy.
type SealedInit struct {
	f *os.File
	// Path executes the copy: /proc/<agent pid>/fd/<fd>. It names the
	// agent's descriptor rather than /proc/self/fd, whose number the forked
	// child may have reused for its stdio and pipes before it execs.
	Path string
	// Size of the copy in bytes.
	Size int64
}

// sealAll forbids every change to the memfd, and to its seals.
const sealAll = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// SealInit copies the binary at path into a memfd and seals it.
func SealInit(path string) (*SealedInit, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal init: %w", err)
	}
	defer src.Close()
	// Close-on-exec: the inits execute it by path; no child inherits it.
	fd, err := unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("seal init: memfd_create: %v: %w", err, errdefs.ErrUnavailable)
	}
	f := os.NewFile(uintptr(fd), "memfd:berth-init")
	n, err := io.Copy(f, src)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seal init: copy %s: %w", path, err)
	}
	if err := unix.Fchmod(fd, 0o500); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal init: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, sealAll); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal init: F_ADD_SEALS: %v: %w", err, errdefs.ErrUnavailable)
	}
	return &SealedInit{f: f, Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), Size: n}, nil
}

// Close releases the copy; inits already running keep it mapped.
func (s *SealedInit) Close() error { return s.f.Close() }
