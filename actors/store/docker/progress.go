package docker

import (
	"context"
	"time"

	"github.com/berthrt/berth/actors/store"
)

// defaultProgressInterval is how often a layer's byte count is reported
// at most while its blob is read.
const defaultProgressInterval = 100 * time.Millisecond

// withReference returns ctx with a sink that stamps the events of ctx's
// sink with the reference imported, or ctx itself when nobody listens.
func withReference(ctx context.Context, reference string) context.Context {
	sink := store.ProgressFrom(ctx)
	if sink == nil {
		return ctx
	}
	return store.WithProgress(ctx, func(p store.Progress) {
		p.Reference = reference
		sink(p)
	})
}

// layerProgress reports the events of one layer to the sink of ctx. The
// zero sink reports nothing and costs nothing.
type layerProgress struct {
	sink  store.ProgressFunc
	id    string
	total uint64
	// bytesPhase is the phase bytes are read in: downloading from a
	// registry, extracting from a local archive or layout.
	bytesPhase store.Phase
	now        func() time.Time
	every      time.Duration
	last       time.Time
	// current is the number of blob bytes read so far.
	current uint64
}

// newLayerProgress returns the reporter of layer l for the sink of ctx.
func (s *Store) newLayerProgress(ctx context.Context, l layerSource) *layerProgress {
	lp := &layerProgress{sink: store.ProgressFrom(ctx), id: l.diffID, bytesPhase: store.PhaseExtracting, now: s.now, every: s.o.ProgressInterval}
	if l.remote {
		lp.bytesPhase = store.PhaseDownloading
	}
	if l.size > 0 {
		lp.total = uint64(l.size)
	}
	if lp.every <= 0 {
		lp.every = defaultProgressInterval
	}
	return lp
}

// report sends one event.
func (lp *layerProgress) report(phase store.Phase, current uint64) {
	if lp.sink == nil {
		return
	}
	if phase.Final() && lp.total == 0 {
		lp.total = current
	}
	lp.sink(store.Progress{LayerID: lp.id, Phase: phase, Current: current, Total: lp.total})
}

// start reports the beginning of the blob read; size is what the source
// says the blob holds (used when the manifest did not say).
func (lp *layerProgress) start(size int64) {
	if lp.sink == nil {
		return
	}
	if lp.total == 0 && size > 0 {
		lp.total = uint64(size)
	}
	lp.last = lp.now()
	lp.report(lp.bytesPhase, 0)
}

// read reports the bytes read so far, at most once per interval.
func (lp *layerProgress) read(n int64) {
	lp.current = uint64(n)
	if lp.sink == nil {
		return
	}
	if t := lp.now(); t.Sub(lp.last) >= lp.every {
		lp.last = t
		lp.report(lp.bytesPhase, lp.current)
	}
}

// finish reports the blob read to its end.
func (lp *layerProgress) finish(n int64) {
	lp.current = uint64(n)
	lp.report(lp.bytesPhase, lp.current)
}
