package archive

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
