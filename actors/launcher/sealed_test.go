package launcher

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSealInit: the copy holds the binary's bytes, cannot be written,
// truncated or grown, and runs.
func TestSealInit(t *testing.T) {
	src, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	s, err := SealInit(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s.Path)
	if err != nil || !bytes.Equal(got, want) || s.Size != int64(len(want)) {
		t.Fatalf("copy: %d bytes (%v), size %d; want %d bytes", len(got), err, s.Size, len(want))
	}
	if _, err := s.f.WriteAt([]byte("x"), 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("write to the copy: %v, want EPERM", err)
	}
	if err := s.f.Truncate(1); !errors.Is(err, unix.EPERM) {
		t.Errorf("truncate the copy: %v, want EPERM", err)
	}
	if _, err := unix.FcntlInt(s.f.Fd(), unix.F_ADD_SEALS, 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("change the seals: %v, want EPERM", err)
	}
	// Root may open it for writing through /proc; the seal still holds.
	if f, err := os.OpenFile(s.Path, os.O_WRONLY, 0); err == nil {
		if _, err := f.Write([]byte("x")); !errors.Is(err, unix.EPERM) {
			t.Errorf("write through /proc: %v, want EPERM", err)
		}
		f.Close()
	}
	if out, err := exec.Command(s.Path).CombinedOutput(); err != nil {
		t.Errorf("run the copy: %v\n%s", err, out)
	}
	if _, err := SealInit("/nonexistent/berth-init"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("seal a missing binary: %v, want not exist", err)
	}
}
