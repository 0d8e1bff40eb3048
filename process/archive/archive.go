// Package archive extracts image layers (tar, optionally gzip or zstd
// compressed) safely into a directory, and defines the whiteout names.
package archive

import (
	"context"
	"fmt"
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
	return Result{}, fmt.Errorf("archive: extract: %w", errdefs.ErrNotImplemented)
}
