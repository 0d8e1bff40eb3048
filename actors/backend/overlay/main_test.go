package overlay

import (
	"os"
	"testing"

	"github.com/berthrt/berth/actors/backend/backendtest"
	pmount "github.com/berthrt/berth/process/mount"
)

// scope holds every test's directories; TestMain fails the run on a
// leaked mount.
var scope backendtest.MountScope

func TestMain(m *testing.M) { os.Exit(scope.Main(m, "overlay")) }

// LeakCheck fails t on a mount left in the scope when t ends.
func LeakCheck(t testing.TB) { scope.LeakCheck(t) }

// NewTestDir returns a fresh directory removed when t ends.
func NewTestDir(t testing.TB) string { return scope.NewTestDir(t) }

// MountsUnder is pmount.MountsUnder, for the external tests.
var MountsUnder = pmount.MountsUnder
