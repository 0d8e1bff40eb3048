package docker

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/fixtures/images"
)

// progressLog records the events a sink receives.
type progressLog struct {
	mu     sync.Mutex
	events []store.Progress
}

func (l *progressLog) add(p store.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, p)
}

// byLayer returns the events of each layer, in order.
func (l *progressLog) byLayer() map[string][]store.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]store.Progress{}
	for _, e := range l.events {
		out[e.LayerID] = append(out[e.LayerID], e)
	}
	return out
}

// blobSizes returns the blob size of each layer (by diff id) of the image
// a layout holds under digest.
func blobSizes(t *testing.T, dir, digest string) map[string]uint64 {
	t.Helper()
	p, err := readOCIManifest(dirFiles{root: dir}, descriptor{MediaType: mediaTypeOCIManifest, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, l := range p.layers {
		out[l.diffID] = uint64(l.size)
	}
	return out
}

// checkLayerEvents checks that every layer of sizes went through the
// phases want (the bytes phase repeated as often as it was reported),
// with Total its blob size, Current never decreasing and equal to Total at
// the end, and Reference ref.
func checkLayerEvents(t *testing.T, log *progressLog, ref string, sizes map[string]uint64, want ...store.Phase) {
	t.Helper()
	got := log.byLayer()
	if len(got) != len(sizes) {
		t.Errorf("events for %d layers, want %d: %+v", len(got), len(sizes), got)
	}
	for id, size := range sizes {
		events := got[id]
		var phases []store.Phase
		var last uint64
		for _, e := range events {
			if e.Reference != ref || e.Total != size || e.Current < last || e.Current > size {
				t.Errorf("layer %s: event %+v (reference %s, total %d, previous current %d)", id, e, ref, size, last)
			}
			last = e.Current
			if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
				phases = append(phases, e.Phase)
			}
		}
		if len(events) == 0 || last != size {
			t.Errorf("layer %s: ends at %d of %d bytes", id, last, size)
		}
		if !slices.Equal(phases, want) {
			t.Errorf("layer %s: phases %v, want %v", id, phases, want)
		}
	}
}

// bigSpec is an image whose first layer holds size random bytes (so that
// its blob is read in many pieces) under the standard image's layers.
func bigSpec(size int) images.Spec {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	spec := images.Standard("")
	spec.Layers = append([]images.Layer{{Entries: []images.Entry{images.File("big", string(data))}}}, spec.Layers...)
	return spec
}

// pushBig pushes an image of bigSpec(3 MiB) to reg and returns its
// reference, its layout and its layers' blob sizes.
func pushBig(t *testing.T, reg *testRegistry) (string, string, map[string]uint64) {
	t.Helper()
	dir := t.TempDir()
	built, err := images.OCILayout(dir, "v1", bigSpec(3<<20))
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.host + "/berth/big:v1"
	push(t, dir, ref)
	return ref, dir, blobSizes(t, dir, built.Digest)
}

// TestRegistryPullProgress: a pull reports, for every layer, waiting,
// the bytes downloaded (never decreasing, up to the blob size), extracting
// and done; a second pull reports every layer cached; an OCI layout import
// reports extracting instead of downloading.
func TestRegistryPullProgress(t *testing.T) {
	reg := startRegistry(t)
	ref, dir, sizes := pushBig(t, reg)
	s := newStore(t, Options{Registry: reg.host, ProgressInterval: time.Nanosecond})

	var first progressLog
	img, err := s.Get(store.WithProgress(context.Background(), first.add), ref, "copy", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.LayerIDs) != 3 {
		t.Fatalf("%d layers", len(img.LayerIDs))
	}
	checkLayerEvents(t, &first, ref, sizes, store.PhaseWaiting, store.PhaseDownloading, store.PhaseExtracting, store.PhaseDone)
	if n := len(first.byLayer()[img.LayerIDs[0]]); n < 10 {
		t.Errorf("the 3 MiB layer's download was reported %d times, want it reported as it went", n)
	}

	var second progressLog
	if _, err := s.Get(store.WithProgress(context.Background(), second.add), ref, "copy", false); err != nil {
		t.Fatal(err)
	}
	checkLayerEvents(t, &second, ref, sizes, store.PhaseWaiting, store.PhaseCached)

	var local progressLog
	fresh := newStore(t, Options{ProgressInterval: time.Nanosecond})
	if _, err := fresh.Get(store.WithProgress(context.Background(), local.add), "oci:"+dir, "copy", false); err != nil {
		t.Fatal(err)
	}
	checkLayerEvents(t, &local, "oci:"+dir, sizes, store.PhaseWaiting, store.PhaseExtracting, store.PhaseDone)

	// Without a sink nothing is reported and the pull works as ever.
	if _, err := newStore(t, Options{Registry: reg.host}).Get(context.Background(), ref, "copy", false); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryPullProgressThrottled: with the default interval, a layer's
// bytes are reported at most every 100 ms, plus its start and its end.
func TestRegistryPullProgressThrottled(t *testing.T) {
	reg := startRegistry(t)
	ref, _, sizes := pushBig(t, reg)
	// A clock that stands still: no interval ever passes.
	frozen := time.Unix(1, 0)
	s := newStore(t, Options{Registry: reg.host, Now: func() time.Time { return frozen }})
	var log progressLog
	if _, err := s.Get(store.WithProgress(context.Background(), log.add), ref, "copy", false); err != nil {
		t.Fatal(err)
	}
	checkLayerEvents(t, &log, ref, sizes, store.PhaseWaiting, store.PhaseDownloading, store.PhaseExtracting, store.PhaseDone)
	for id, events := range log.byLayer() {
		if len(events) != 5 {
			t.Errorf("layer %s: %d events, want 5 (waiting, downloading at 0 and at the end, extracting, done): %+v", id, len(events), events)
		}
	}
}

// TestRegistryPullProgressJoined: a Get that joins a pull in flight sees
// where every layer stands, then the rest of the pull, and every layer
// done; the pull happens once.
func TestRegistryPullProgressJoined(t *testing.T) {
	reg := startRegistry(t)
	built, dir := pushStandardDir(t, reg.host, "berth/test:v1")
	ref := reg.host + "/berth/test:v1"
	held := layerDigests(t, dir, built.Digest)[1]
	reg.hold.Store(held)
	s := newStore(t, Options{Registry: reg.host, ProgressInterval: time.Nanosecond})
	sizes := blobSizes(t, dir, built.Digest)

	var first, joiner progressLog
	errs := make(chan error, 2)
	go func() {
		_, err := s.Get(store.WithProgress(context.Background(), first.add), ref, "copy", false)
		errs <- err
	}()
	select {
	case <-reg.held:
	case <-time.After(time.Minute):
		t.Fatal("the pull never reached the held layer")
	}
	// Wait until the first half of the held layer has been read and
	// reported.
	heldID := built.Images[0].DiffIDs[1]
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if events := first.byLayer()[heldID]; len(events) > 0 && events[len(events)-1].Current > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the held layer's first half was never reported: %+v", first.byLayer())
		}
	}
	go func() {
		_, err := s.Get(store.WithProgress(context.Background(), joiner.add), ref, "copy", false)
		errs <- err
	}()
	// The joiner is told at once where both layers stand.
	for deadline := time.Now().Add(time.Minute); len(joiner.byLayer()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the joiner got no replay: %+v", joiner.byLayer())
		}
	}
	close(reg.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkLayerEvents(t, &first, ref, sizes, store.PhaseWaiting, store.PhaseDownloading, store.PhaseExtracting, store.PhaseDone)
	// The joiner came in while the held layer was half downloaded: its
	// first event for that layer is the replay of that, and from there on
	// it saw what the first caller saw, down to every layer done.
	firstEvents := first.byLayer()
	if events := joiner.byLayer()[heldID]; len(events) == 0 || events[0].Phase != store.PhaseDownloading || events[0].Current == 0 {
		t.Errorf("joiner's events for the held layer: %+v", events)
	}
	for id, events := range joiner.byLayer() {
		if all := firstEvents[id]; len(events) > len(all) || !slices.Equal(events, all[len(all)-len(events):]) {
			t.Errorf("layer %s: the joiner saw %+v, not the end of %+v", id, events, all)
		}
		if last := events[len(events)-1]; last.Phase != store.PhaseDone || last.Current != sizes[id] || last.Total != sizes[id] {
			t.Errorf("joiner: layer %s ends with %+v", id, last)
		}
	}
	if s.importRuns.Load() != 1 {
		t.Errorf("%d imports, want 1", s.importRuns.Load())
	}
}

// BenchmarkRegistryPullProgress pulls a 3-layer image (a 32 MiB random
// layer) from an in-process registry into a fresh store per iteration,
// without a progress sink and with one reporting every read, so that the
// cost of reporting shows against the pull.
//
//	go test -run '^$' -bench RegistryPullProgress -benchtime 10x ./actors/store/docker/
func BenchmarkRegistryPullProgress(b *testing.B) {
	reg := startRegistry(b)
	dir := b.TempDir()
	if _, err := images.OCILayout(dir, "v1", bigSpec(32<<20)); err != nil {
		b.Fatal(err)
	}
	ref := reg.host + "/berth/big:v1"
	push(b, dir, ref)
	for _, c := range []struct {
		name  string
		sink  store.ProgressFunc
		every time.Duration
	}{
		{"no-sink", nil, 0},
		{"sink-every-read", func(store.Progress) {}, time.Nanosecond},
		{"sink-100ms", func(store.Progress) {}, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if c.sink != nil {
				ctx = store.WithProgress(ctx, c.sink)
			}
			b.SetBytes(32 << 20)
			for range b.N {
				b.StopTimer()
				s, err := New(Options{Dir: filepath.Join(b.TempDir(), "store"), Registry: reg.host, ProgressInterval: c.every})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.Get(ctx, ref, "copy", false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
