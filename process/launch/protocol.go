package launch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/process/errdefs"
)

// The descriptors the launcher hands the init, after stdin, stdout, stderr.
const (
	// SpecFd carries one framed LaunchSpec, then EOF.
	SpecFd = 3
	// ReleaseFd is read for one byte: the command may exec. EOF without the
	// byte means the launcher gave up; the init exits.
	ReleaseFd = 4
	// ReportFd carries framed ChildReports: READY or FAILED after setup,
	// STARTED or FAILED after the release.
	ReportFd = 5
)

// InitEnv marks the process as a container init; its value is the protocol
// version. The launcher sets it, and nothing else is in the init's
// environment.
const InitEnv = "_BERTH_INIT"

// protocolVersion changes when the descriptors or the framing change.
const protocolVersion = "1"

// StatusFile is the file in the container's runtime directory where the
// init records the command's wait status.
const StatusFile = "status"

// maxFrame caps a framed message: a LaunchSpec is a few KiB.
const maxFrame = 16 << 20

// InitArgs is the argv (after the binary) that makes berth an init: the
// container id and runtime directory are there for ps(1) and for the
// launcher's orphan scan.
func InitArgs(id, runtimeDir string) []string { return []string{"init", id, runtimeDir} }

// InitEnviron is the init's whole environment.
func InitEnviron() []string { return []string{InitEnv + "=" + protocolVersion} }

// ParseInitArgs finds the container id and runtime directory in an init's
// argv (as /proc/<pid>/cmdline gives it), wherever the "init" word is.
func ParseInitArgs(argv []string) (id, runtimeDir string, ok bool) {
	for i := 1; i+2 < len(argv); i++ {
		if argv[i] == "init" {
			return argv[i+1], argv[i+2], argv[i+1] != "" && filepath.IsAbs(argv[i+2])
		}
	}
	return "", "", false
}

// WriteFrame writes m as a 4-byte big-endian length and its bytes.
func WriteFrame(w io.Writer, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame into m. A clean EOF before the length is
// io.EOF; anything else short or oversized is an error.
func ReadFrame(r io.Reader, m proto.Message) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("frame of %d bytes: %w", n, errdefs.ErrInvalidArgument)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("short frame: %w", io.ErrUnexpectedEOF)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("malformed frame: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	return nil
}

// WriteStatus records ws in f with one pwrite at offset 0: a reader sees
// either nothing or the whole record, which ends with a newline.
func WriteStatus(f *os.File, ws syscall.WaitStatus) error {
	_, err := f.WriteAt([]byte(strconv.Itoa(int(ws))+"\n"), 0)
	return err
}

// ReadStatus reads the wait status an init recorded in runtimeDir.
// ok is false when there is no complete record.
func ReadStatus(runtimeDir string) (ws syscall.WaitStatus, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(runtimeDir, StatusFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		return 0, false, nil
	}
	v, err := strconv.Atoi(strings.TrimSuffix(s, "\n"))
	if err != nil {
		return 0, false, fmt.Errorf("status file %s: %w", filepath.Join(runtimeDir, StatusFile), errdefs.ErrInvalidArgument)
	}
	return syscall.WaitStatus(v), true, nil
}
