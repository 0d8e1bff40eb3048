package backendtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	pmount "github.com/berthrt/berth/process/mount"
)

// MountScope is the directory every test of a mounting backend's package
// works under: TMPDIR points at it, so t.TempDir (and this suite's
// directories) land there too, and its name holds "berth-test" so that a
// leaked mount is easy to spot in /proc/self/mountinfo.
type MountScope struct{ root string }

// Main runs the package's tests under a fresh scope named after pkg, then
// fails the run if any mount is left below it (detaching those, so the host
// stays clean). Call it from TestMain: os.Exit(scope.Main(m, "overlay")).
func (s *MountScope) Main(m *testing.M, pkg string) int {
	dir, err := os.MkdirTemp("", "berth-test-"+pkg+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if s.root, err = filepath.EvalSymlinks(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := os.Setenv("TMPDIR", s.root); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := m.Run()
	if mps := DetachUnder(s.root); len(mps) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: mounts left under %s after the tests (now detached): %v\n", s.root, mps)
		code = 1
	}
	if err := os.RemoveAll(s.root); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// DetachUnder detaches every mount at or below dir and returns their mount
// points (none: nothing was mounted).
func DetachUnder(dir string) []string {
	mps, err := pmount.MountsUnder(dir)
	if err != nil {
		return []string{err.Error()}
	}
	for _, mp := range mps {
		_ = unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	return mps
}

// LeakCheck registers a cleanup that fails t if any mount is left in the
// scope when t ends (after every cleanup registered later, such as the
// conformance suite's Destroy calls), and detaches them.
func (s *MountScope) LeakCheck(t testing.TB) {
	t.Cleanup(func() {
		if mps := DetachUnder(s.root); len(mps) > 0 {
			t.Errorf("mounts left under %s (now detached): %v", s.root, mps)
		}
	})
}

// NewTestDir returns a fresh directory in the scope, with a "berth-test"
// prefix; anything still mounted below it is detached and it is removed
// when t ends.
func (s *MountScope) NewTestDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(s.root, "berth-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		DetachUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// MountinfoLine returns the /proc/self/mountinfo line of the mount at mp,
// failing t when mp is not a mount point.
func MountinfoLine(t testing.TB, mp string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == mp {
			return l
		}
	}
	t.Fatalf("%s is not a mount point", mp)
	return ""
}
