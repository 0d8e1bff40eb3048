package aufs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// testRoot is the directory every test of the package works under: TMPDIR
// points at it, so t.TempDir (and the conformance suite's directories)
// land there too, and its name holds "berth-test" so a leaked mount is
// easy to spot in /proc/self/mountinfo.
var testRoot string

// TestMain runs the tests under testRoot, then fails the run if any mount
// is left below it (detaching those, so the host stays clean).
func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "berth-test-aufs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if testRoot, err = filepath.EvalSymlinks(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := os.Setenv("TMPDIR", testRoot); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := m.Run()
	if mps := DetachUnder(testRoot); len(mps) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: mounts left under %s after the tests (now detached): %v\n", testRoot, mps)
		code = 1
	}
	if err := os.RemoveAll(testRoot); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// DetachUnder detaches every mount at or below dir and returns their mount
// points (none: nothing was mounted).
func DetachUnder(dir string) []string {
	mps, err := mountsUnder(dir)
	if err != nil {
		return []string{err.Error()}
	}
	for _, mp := range mps {
		_ = unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	return mps
}

// LeakCheck registers a cleanup that fails t if any mount is left under
// testRoot when t ends (after every cleanup registered later, such as the
// conformance suite's Destroy calls), and detaches them.
func LeakCheck(t testing.TB) {
	t.Cleanup(func() {
		if mps := DetachUnder(testRoot); len(mps) > 0 {
			t.Errorf("mounts left under %s (now detached): %v", testRoot, mps)
		}
	})
}

// NewTestDir returns a fresh directory under testRoot, named after the test
// with a "berth-test" prefix; anything still mounted below it is detached
// and it is removed when t ends.
func NewTestDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(testRoot, "berth-test-")
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

// MountsUnder is mountsUnder, for the external tests.
var MountsUnder = mountsUnder
