package backendtest

import (
	"testing"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/process/archive"
)

// Options describe what the backend under test can do; cases that need a
// capability the backend does not declare are skipped, saying why.
type Options struct {
	// MultiLayer is set when the backend stacks more than one layer (bind
	// does not).
	MultiLayer bool
	// Writable is set when the container may write into the rootfs (bind
	// mounts it read-only, and then writes must fail).
	Writable bool
	// NeedsRoot is set when the backend only works as root (mounts): every
	// case then needs root.
	NeedsRoot bool
	// LayerFormat is the whiteout form of the layers the backend consumes:
	// archive.WhiteoutAUFS (copy, aufs) or archive.WhiteoutOverlay (overlay).
	LayerFormat archive.WhiteoutFormat
	// Sparse is set when files with holes must stay sparse in the rootfs.
	Sparse bool
}

// testCase is one subtest of the suite.
type testCase struct {
	name  string
	multi bool // needs Options.MultiLayer
	root  bool // needs root
	run   func(e *env)
}

// Run runs the conformance suite against the backends newBackend makes.
// newBackend is called once per case (and once more where a case checks
// that a fresh instance can clean up after an old one, as after an agent
// restart).
//
// The contract checked, beyond the stacking itself: Provision with no
// layers fails with errdefs.ErrInvalidArgument; an existing rootfs fails
// with errdefs.ErrAlreadyExists and is left alone; a cancelled context
// fails with a cancellation error; a failed Provision leaves no rootfs;
// Destroy of a rootfs that does not exist returns existed=false and no
// error; nothing is ever created, changed or removed outside the rootfs
// (layers included), however the layers' symlinks point.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	s := &suite{newBackend: newBackend, opts: opts}
	for _, c := range s.cases() {
		t.Run(c.name, func(t *testing.T) {
			if opts.NeedsRoot || c.root {
				RequireRoot(t)
			}
			if c.multi && !opts.MultiLayer {
				t.Skip("the backend stacks a single layer (Options.MultiLayer is false)")
			}
			c.run(newEnv(t, newBackend(t), opts))
		})
	}
}

// suite holds Run's arguments for the cases.
type suite struct {
	newBackend func(t *testing.T) backend.Backend
	opts       Options
}

// cases lists every case, in the order they run.
func (s *suite) cases() []testCase {
	return []testCase{
		{name: "EmptyLayerList", run: caseEmptyLayerList},
		{name: "SingleLayer", run: caseSingleLayer},
		{name: "LayerOrder", multi: true, run: caseLayerOrder},
		{name: "Whiteouts", multi: true, run: caseWhiteouts},
		{name: "OpaqueDir", multi: true, run: caseOpaqueDir},
		{name: "WhiteoutThroughSymlink", multi: true, run: caseWhiteoutThroughSymlink},
		{name: "Hardlinks", run: caseHardlinks},
		{name: "HardlinkBrokenByUpperLayer", multi: true, run: caseHardlinkBrokenByUpperLayer},
		{name: "Symlinks", run: caseSymlinks},
		{name: "FIFO", run: caseFIFO},
		{name: "Devices", root: true, run: caseDevices},
		{name: "Modes", run: caseModes},
		{name: "ReadOnlyDirMerged", multi: true, run: caseReadOnlyDirMerged},
		{name: "Ownership", root: true, run: caseOwnership},
		{name: "Xattrs", run: caseXattrs},
		{name: "Capabilities", root: true, run: caseCapabilities},
		{name: "Times", run: caseTimes},
		{name: "TimesOfMergedDirs", multi: true, run: caseTimesOfMergedDirs},
		{name: "Sparse", run: caseSparse},
		{name: "ManyLayers", multi: true, run: caseManyLayers},
		{name: "ManyFiles", run: caseManyFiles},
		{name: "Writes", run: caseWrites},
		{name: "LayersUntouched", run: caseLayersUntouched},
		{name: "Destroy", run: caseDestroy},
		{name: "DestroyUnknown", run: caseDestroyUnknown},
		{name: "DestroyTwice", run: caseDestroyTwice},
		{name: "AlreadyExists", run: caseAlreadyExists},
		{name: "MissingLayer", run: caseMissingLayer},
		{name: "Canceled", run: caseCanceled},
		{name: "Concurrent", run: caseConcurrent},
		{name: "Recovery", run: s.caseRecovery},
	}
}
