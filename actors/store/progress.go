package store

import "context"

// Phase is where one layer of a pull stands.
type Phase int

// The phases of a layer, in the order a layer goes through them. A layer
// already in the cache goes from PhaseWaiting straight to PhaseCached.
const (
	// PhaseWaiting: the layer is queued behind other layers of the image.
	PhaseWaiting Phase = iota + 1
	// PhaseDownloading: bytes of the layer blob are arriving from a
	// registry (and are unpacked as they arrive).
	PhaseDownloading
	// PhaseExtracting: the layer is being unpacked from a local source
	// (Current counts blob bytes read), or, after a download, verified,
	// flushed and moved into the cache.
	PhaseExtracting
	// PhaseDone: the layer is in the cache.
	PhaseDone
	// PhaseCached: the layer was in the cache already.
	PhaseCached
)

// String is the phase's lower-case name ("downloading").
func (p Phase) String() string {
	switch p {
	case PhaseWaiting:
		return "waiting"
	case PhaseDownloading:
		return "downloading"
	case PhaseExtracting:
		return "extracting"
	case PhaseDone:
		return "done"
	case PhaseCached:
		return "cached"
	}
	return "unknown"
}

// Final reports whether a layer in this phase is in the cache.
func (p Phase) Final() bool { return p == PhaseDone || p == PhaseCached }

// Progress is one event of a pull or import: where one layer stands.
type Progress struct {
	// Reference is the canonical reference of the image being pulled.
	Reference string
	// LayerID is the layer's diff id ("sha256:<hex>"), as in Image.LayerIDs.
	LayerID string
	// Phase is where the layer stands.
	Phase Phase
	// Current is the number of bytes of the layer blob read so far.
	Current uint64
	// Total is the blob's size in bytes, 0 when the source does not say.
	Total uint64
}

// ProgressFunc receives progress events. It is called from the goroutines
// of a pull, concurrently for different layers, and must return quickly.
type ProgressFunc func(Progress)

// progressKey carries a ProgressFunc in a context.
type progressKey struct{}

// WithProgress returns a context whose Gets report their progress to fn.
// A Store that reports progress (the docker store) calls fn for every
// layer of every import made for that Get; see its package doc.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ProgressFrom returns the ProgressFunc of ctx, or nil.
func ProgressFrom(ctx context.Context) ProgressFunc {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return fn
}
