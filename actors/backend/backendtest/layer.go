package backendtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/archive"
)

// Kind is the type of a layer Entry.
type Kind int

// The entry kinds.
const (
	// KindFile is a regular file.
	KindFile Kind = iota
	// KindDir is a directory.
	KindDir
	// KindSymlink is a symbolic link to Target.
	KindSymlink
	// KindHardlink is another name for the earlier entry at Target.
	KindHardlink
	// KindFIFO is a named pipe.
	KindFIFO
	// KindCharDevice is a character device Major:Minor.
	KindCharDevice
	// KindBlockDevice is a block device Major:Minor.
	KindBlockDevice
	// KindWhiteout deletes Path from the layers below.
	KindWhiteout
	// KindOpaque hides everything the layers below have in directory Path.
	KindOpaque
)

// String returns the kind's name.
func (k Kind) String() string {
	names := [...]string{"file", "dir", "symlink", "hardlink", "fifo", "char", "block", "whiteout", "opaque"}
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// DefaultTime returns the mtime and atime of every entry, and of every
// directory created implicitly, that sets none: fixed, with nanoseconds, so
// trees built apart compare equal.
func DefaultTime() time.Time { return time.Unix(1577934245, 123456789) }

// Extent is data written at an offset of a sparse file.
type Extent struct {
	Offset int64
	Data   []byte
}

// Owner is a numeric owner.
type Owner struct{ UID, GID int }

// Entry describes one entry of a layer, or of an expected tree.
type Entry struct {
	// Path is slash-separated and relative to the layer root; "." is the root
	// (KindDir or KindOpaque only). Missing parents are created as 0755
	// directories with DefaultTime.
	Path string
	// Kind is the entry type.
	Kind Kind
	// Mode is the permission bits with setuid/setgid/sticky; 0 means 0644
	// (0755 for directories) unless set with WithMode. Ignored for symlinks,
	// hard links and whiteouts.
	Mode uint32
	// modeSet records WithMode, so that WithMode(0) means 0000.
	modeSet bool
	// Owner, if set, is applied with lchown (needs root for other ids).
	Owner *Owner
	// Data is a file's content, written at offset 0.
	Data []byte
	// Extents are more data written at their offsets (sparse files).
	Extents []Extent
	// Size, if larger than what Data and Extents reach, extends the file
	// with a hole.
	Size int64
	// Target is a symlink's target (verbatim) or a hard link's entry path.
	Target string
	// Major and Minor number a device.
	Major, Minor uint32
	// Xattrs are set with lsetxattr.
	Xattrs map[string]string
	// MTime is the modification (and access) time; zero means DefaultTime().
	MTime time.Time
}

// File returns a regular file entry holding content.
func File(p, content string) Entry { return Entry{Path: p, Kind: KindFile, Data: []byte(content)} }

// Dir returns a directory entry.
func Dir(p string) Entry { return Entry{Path: p, Kind: KindDir} }

// Symlink returns a symlink entry pointing at target.
func Symlink(p, target string) Entry { return Entry{Path: p, Kind: KindSymlink, Target: target} }

// Hardlink returns a hard link entry: another name for the entry at target,
// which must come earlier in the same layer.
func Hardlink(p, target string) Entry { return Entry{Path: p, Kind: KindHardlink, Target: target} }

// FIFO returns a named pipe entry.
func FIFO(p string) Entry { return Entry{Path: p, Kind: KindFIFO} }

// CharDevice returns a character device entry (needs root).
func CharDevice(p string, major, minor uint32) Entry {
	return Entry{Path: p, Kind: KindCharDevice, Major: major, Minor: minor}
}

// BlockDevice returns a block device entry (needs root).
func BlockDevice(p string, major, minor uint32) Entry {
	return Entry{Path: p, Kind: KindBlockDevice, Major: major, Minor: minor}
}

// Whiteout returns an entry deleting p from the layers below.
func Whiteout(p string) Entry { return Entry{Path: p, Kind: KindWhiteout} }

// Opaque returns an entry hiding the lower layers' contents of directory p.
func Opaque(p string) Entry { return Entry{Path: p, Kind: KindOpaque} }

// WithMode returns e with permission bits m.
func (e Entry) WithMode(m uint32) Entry { e.Mode, e.modeSet = m, true; return e }

// mode returns the permission bits to apply, def when none were given.
func (e *Entry) mode(def uint32) uint32 {
	if e.Mode != 0 || e.modeSet {
		return e.Mode & 0o7777
	}
	return def
}

// WithOwner returns e owned by uid:gid.
func (e Entry) WithOwner(uid, gid int) Entry { e.Owner = &Owner{UID: uid, GID: gid}; return e }

// WithXattr returns e with the extended attribute name=value added.
func (e Entry) WithXattr(name, value string) Entry {
	x := make(map[string]string, len(e.Xattrs)+1)
	for k, v := range e.Xattrs {
		x[k] = v
	}
	x[name] = value
	e.Xattrs = x
	return e
}

// WithMTime returns e with modification time t.
func (e Entry) WithMTime(t time.Time) Entry { e.MTime = t; return e }

// WithExtent returns e with data also written at off.
func (e Entry) WithExtent(off int64, data []byte) Entry {
	e.Extents = append(append([]Extent(nil), e.Extents...), Extent{Offset: off, Data: data})
	return e
}

// WithSize returns e extended with a hole up to size.
func (e Entry) WithSize(size int64) Entry { e.Size = size; return e }

// BuildLayer writes entries into dir (created if missing), in order, with
// whiteouts in the given form: AUFS (".wh.NAME" files and ".wh..wh..opq"
// markers) or overlay (0/0 character devices and the
// trusted.overlay.opaque=y xattr, which needs root). Metadata is applied
// after all entries exist, directories deepest first, so every mtime is the
// one asked for. It never writes through a symlink: an entry below a
// symlink is an error.
func BuildLayer(dir string, format archive.WhiteoutFormat, entries ...Entry) error {
	b := &builder{root: dir, format: format, dirs: map[string]*Entry{".": nil}}
	entries = append([]Entry(nil), entries...) // paths are cleaned in place
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range entries {
		if err := b.create(&entries[i]); err != nil {
			return fmt.Errorf("build layer %s: %s %q: %w", dir, entries[i].Kind, entries[i].Path, err)
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.Kind == KindDir || e.Kind == KindHardlink || e.Kind == KindOpaque || e.Kind == KindWhiteout {
			continue
		}
		if err := b.meta(e); err != nil {
			return fmt.Errorf("build layer %s: %s %q: %w", dir, e.Kind, e.Path, err)
		}
	}
	return b.dirMeta()
}

// builder holds the state of one BuildLayer.
type builder struct {
	root   string
	format archive.WhiteoutFormat
	dirs   map[string]*Entry // every directory; nil: implicit (defaults)
}

func (b *builder) full(p string) string { return filepath.Join(b.root, filepath.FromSlash(p)) }

// clean validates and cleans an entry path.
func clean(p string) (string, error) {
	c := path.Clean(p)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q escapes the layer", p)
	}
	return c, nil
}

// parents creates the missing parents of p as directories, refusing to go
// through anything that is not one.
func (b *builder) parents(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	cur := ""
	for comp := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, comp)
		fi, err := os.Lstat(b.full(cur))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(b.full(cur), 0o755); err != nil {
				return err
			}
			if _, ok := b.dirs[cur]; !ok {
				b.dirs[cur] = nil
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("parent %q is not a directory (%s)", cur, fi.Mode().Type())
		}
	}
	return nil
}

// create makes the entry (without its metadata).
func (b *builder) create(e *Entry) error {
	p, err := clean(e.Path)
	if err != nil {
		return err
	}
	e.Path = p
	if p == "." && e.Kind != KindDir && e.Kind != KindOpaque {
		return errors.New("only a directory can be the root")
	}
	if err := b.parents(p); err != nil {
		return err
	}
	full := b.full(p)
	switch e.Kind {
	case KindFile:
		return writeFile(full, e)
	case KindDir:
		b.dirs[p] = e
		if err := os.Mkdir(full, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	case KindSymlink:
		return os.Symlink(e.Target, full)
	case KindHardlink:
		t, err := clean(e.Target)
		if err != nil {
			return err
		}
		return unix.Linkat(unix.AT_FDCWD, b.full(t), unix.AT_FDCWD, full, 0)
	case KindFIFO:
		return unix.Mknod(full, unix.S_IFIFO|0o600, 0)
	case KindCharDevice:
		return unix.Mknod(full, unix.S_IFCHR|0o600, int(unix.Mkdev(e.Major, e.Minor)))
	case KindBlockDevice:
		return unix.Mknod(full, unix.S_IFBLK|0o600, int(unix.Mkdev(e.Major, e.Minor)))
	case KindWhiteout:
		return b.whiteout(p)
	case KindOpaque:
		return b.opaque(p)
	}
	return fmt.Errorf("unknown kind %d", int(e.Kind))
}

// whiteout writes a whiteout for p in the builder's format.
func (b *builder) whiteout(p string) error {
	if b.format == archive.WhiteoutOverlay {
		return unix.Mknod(b.full(p), unix.S_IFCHR, 0)
	}
	dir, name := path.Split(p)
	return writeEmpty(b.full(path.Join(dir, archive.WhiteoutPrefix+name)))
}

// opaque marks directory p opaque in the builder's format.
func (b *builder) opaque(p string) error {
	if _, ok := b.dirs[p]; !ok {
		if err := os.Mkdir(b.full(p), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		b.dirs[p] = nil
	}
	if b.format == archive.WhiteoutOverlay {
		return unix.Lsetxattr(b.full(p), "trusted.overlay.opaque", []byte("y"), 0)
	}
	return writeEmpty(b.full(path.Join(p, archive.WhiteoutOpaque)))
}

func writeEmpty(full string) error {
	fd, err := unix.Open(full, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, full, timespecs(DefaultTime()), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(fd)
		return err
	}
	return unix.Close(fd)
}

// writeFile creates a regular file with e's data, extents and size.
func writeFile(full string, e *Entry) error {
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(e.Data); err != nil {
		return err
	}
	for _, x := range e.Extents {
		if _, err := f.WriteAt(x.Data, x.Offset); err != nil {
			return err
		}
	}
	if fi, err := f.Stat(); err != nil {
		return err
	} else if e.Size > fi.Size() {
		if err := f.Truncate(e.Size); err != nil {
			return err
		}
	}
	return f.Close()
}

func timespecs(t time.Time) []unix.Timespec {
	ts := unix.NsecToTimespec(t.UnixNano())
	return []unix.Timespec{ts, ts}
}

func mtimeOf(e *Entry) time.Time {
	if e == nil || e.MTime.IsZero() {
		return DefaultTime()
	}
	return e.MTime
}

// meta applies an entry's owner, mode, xattrs and times, in that order
// (chown clears setuid bits and capabilities).
func (b *builder) meta(e *Entry) error {
	full := b.full(e.Path)
	if e.Owner != nil {
		if err := os.Lchown(full, e.Owner.UID, e.Owner.GID); err != nil {
			return err
		}
	}
	if e.Kind != KindSymlink {
		def := uint32(0o644)
		if e.Kind == KindDir {
			def = 0o755
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, full, e.mode(def), 0); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(e.Xattrs) {
		if err := unix.Lsetxattr(full, k, []byte(e.Xattrs[k]), 0); err != nil {
			return fmt.Errorf("setxattr %s: %w", k, err)
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, full, timespecs(mtimeOf(e)), unix.AT_SYMLINK_NOFOLLOW)
}

// dirMeta applies the metadata of every directory, deepest first; implicit
// ones get 0755 and DefaultTime.
func (b *builder) dirMeta() error {
	paths := make([]string, 0, len(b.dirs))
	for p := range b.dirs {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := depth(paths[i]), depth(paths[j])
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	for _, p := range paths {
		e := b.dirs[p]
		if e == nil {
			e = &Entry{Path: p, Kind: KindDir}
		}
		if err := b.meta(e); err != nil {
			return fmt.Errorf("build layer %s: dir %q: %w", b.root, p, err)
		}
	}
	return nil
}

func depth(p string) int {
	if p == "." {
		return 0
	}
	return strings.Count(p, "/") + 1
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
