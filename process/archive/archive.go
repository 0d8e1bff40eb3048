package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"hash"
	"io"

	"github.com/berthrt/berth/process/errdefs"
)

// Whiteout names, as in the OCI image spec (AUFS form).
const (
	// WhiteoutPrefix marks a deleted entry: ".wh.NAME" deletes NAME from lower layers.
	WhiteoutPrefix = ".wh."
	// WhiteoutOpaque marks a directory whose lower-layer contents are hidden.
	WhiteoutOpaque = ".wh..wh..opq"
)

// WhiteoutFormat is how whiteouts are written into an extracted layer.
type WhiteoutFormat int

const (
	// WhiteoutAUFS keeps ".wh." files verbatim (empty regular files); the copy
	// and aufs backends apply them. This is the default.
	WhiteoutAUFS WhiteoutFormat = iota
	// WhiteoutOverlay converts them to overlayfs form: a 0/0 character device
	// for ".wh.NAME" and the xattr trusted.overlay.opaque=y for an opaque dir.
	WhiteoutOverlay
)

// Options tune Extract.
type Options struct {
	// Whiteouts selects the whiteout form written.
	Whiteouts WhiteoutFormat
	// MaxBytes caps the uncompressed bytes read (0: DefaultMaxBytes).
	MaxBytes int64
	// MaxEntries caps the number of entries (0: DefaultMaxEntries).
	MaxEntries int
	// NoChown skips chown of entries to their header owner (for non-root use).
	NoChown bool
	// TarHash, when set, also receives every byte of the uncompressed tar
	// stream, to its very end (as the DiffID does), for callers whose
	// content address is another hash: an APPC image id is the SHA-512 of
	// the uncompressed image tar. It is complete only when Extract succeeds.
	TarHash hash.Hash

	// forceWalk skips openat2, as if the kernel lacked it (tests).
	forceWalk bool
}

// Limits applied when Options leave them zero.
const (
	DefaultMaxBytes   = 64 << 30
	DefaultMaxEntries = 4 << 20
)

// Result describes an extracted layer.
type Result struct {
	// DiffID is "sha256:<hex>" of the uncompressed tar stream.
	DiffID string
	// Size is the sum of regular file sizes written.
	Size int64
	// Entries is the number of tar entries applied.
	Entries int
}

// Extract reads a tar layer from r (plain, gzip or zstd, detected from the
// first bytes) and writes it into dir, which must exist and be empty.
//
// Hostile input is rejected with an error of class errdefs.ErrInvalidArgument
// naming the entry: absolute or escaping names, writes through symlinks,
// hardlinks that leave the layer, malformed whiteouts, disallowed device nodes,
// truncated or corrupt streams. Limits give errdefs.ErrResourceExhausted.
// Nothing is ever written outside dir.
func Extract(ctx context.Context, r io.Reader, dir string, opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	rt, err := openRoot(dir, opts.forceWalk)
	if err != nil {
		return Result{}, fmt.Errorf("archive: layer directory %q: %w (%w)", dir, errdefs.ErrInvalidArgument, err)
	}
	defer rt.close()
	buf := make([]byte, copyBufSize)
	empty, err := rt.empty(buf)
	if err != nil {
		return Result{}, fmt.Errorf("archive: layer directory %q: %w (%w)", dir, errdefs.ErrInvalidArgument, err)
	}
	if !empty {
		return Result{}, fmt.Errorf("archive: layer directory %q is not empty: %w", dir, errdefs.ErrAlreadyExists)
	}
	s, err := openStream(r, opts.MaxBytes, opts.TarHash)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	x := &extractor{ctx: ctx, opts: opts, root: rt, stream: s, tr: tar.NewReader(&s.meter), buf: buf}
	if err := x.run(); err != nil {
		return x.res, err
	}
	x.res.DiffID = s.diffID()
	return x.res, nil
}

// withDefaults fills in the zero limits and checks the others.
func (o Options) withDefaults() (Options, error) {
	if o.MaxBytes < 0 || o.MaxEntries < 0 {
		return o, fmt.Errorf("archive: negative limits %d bytes, %d entries: %w", o.MaxBytes, o.MaxEntries, errdefs.ErrInvalidArgument)
	}
	if o.Whiteouts != WhiteoutAUFS && o.Whiteouts != WhiteoutOverlay {
		return o, fmt.Errorf("archive: unknown whiteout format %d: %w", o.Whiteouts, errdefs.ErrInvalidArgument)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	return o, nil
}
