package docker

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// maxJSONSize bounds the JSON files read (index, manifests, configs).
const maxJSONSize = 16 << 20

// maxLinkHops bounds the symlink chains followed inside an archive.
const maxLinkHops = 8

// files is read access to the files of an image source: an OCI layout
// directory or a `docker save` tarball. Names are slash paths relative to
// the source's root. A name that is absent wraps fs.ErrNotExist.
type files interface {
	// open returns the file's content and size.
	open(name string) (io.ReadCloser, int64, error)
	// where names the source in messages.
	where() string
	close() error
}

// dirFiles reads files under a directory.
type dirFiles struct{ root string }

func (d dirFiles) open(name string) (io.ReadCloser, int64, error) {
	rel := filepath.FromSlash(name)
	if !filepath.IsLocal(rel) {
		return nil, 0, fmt.Errorf("%s: %q leaves the layout: %w", d.root, name, errdefs.ErrInvalidArgument)
	}
	f, err := os.Open(filepath.Join(d.root, rel))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", d.root, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("%s: %w", d.root, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, fmt.Errorf("%s: %s is not a regular file: %w", d.root, name, errdefs.ErrInvalidArgument)
	}
	return f, fi.Size(), nil
}

func (d dirFiles) where() string { return d.root }
func (d dirFiles) close() error  { return nil }

// tarEntry locates one member of a tarball.
type tarEntry struct {
	typ    byte
	offset int64
	size   int64
	link   string
}

// tarFiles reads the members of an uncompressed tarball in place: one pass
// records where each member's data lies, and reads are section readers of
// the file, so layers are read in parallel without copying them out.
type tarFiles struct {
	path    string
	f       *os.File
	entries map[string]tarEntry
}

// openTar indexes the tarball at p.
func openTar(p string) (*tarFiles, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, missing(p)
		}
		return nil, fmt.Errorf("docker-archive %s: %w", p, err)
	}
	t := &tarFiles{path: p, f: f, entries: map[string]tarEntry{}}
	if err := t.index(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return t, nil
}

// index reads every header. archive/tar reads headers straight from the
// file and seeks over data, so the file offset after Next is where the
// member's data starts.
func (t *tarFiles) index() error {
	var magic [2]byte
	if _, err := t.f.ReadAt(magic[:], 0); err == nil && magic == [2]byte{0x1f, 0x8b} {
		return fmt.Errorf("docker-archive %s is gzip-compressed; decompress it first (gunzip): %w", t.path, errdefs.ErrInvalidArgument)
	}
	tr := tar.NewReader(t.f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("docker-archive %s: not a tar archive: %v: %w", t.path, err, errdefs.ErrInvalidArgument)
		}
		off, err := t.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("docker-archive %s: %w", t.path, err)
		}
		name := cleanName(hdr.Name)
		if name == "" {
			continue
		}
		t.entries[name] = tarEntry{typ: hdr.Typeflag, offset: off, size: hdr.Size, link: hdr.Linkname}
	}
	if len(t.entries) == 0 {
		return fmt.Errorf("docker-archive %s: empty archive: %w", t.path, errdefs.ErrInvalidArgument)
	}
	return nil
}

// cleanName turns a member name into a clean relative slash path ("" for
// the root).
func cleanName(name string) string {
	c := path.Clean("/" + name)
	return strings.TrimPrefix(c, "/")
}

func (t *tarFiles) open(name string) (io.ReadCloser, int64, error) {
	name = cleanName(name)
	for hops := 0; hops <= maxLinkHops; hops++ {
		e, ok := t.entries[name]
		if !ok {
			return nil, 0, fmt.Errorf("%s has no %s: %w", t.path, name, fs.ErrNotExist)
		}
		switch e.typ {
		case tar.TypeReg:
			return io.NopCloser(io.NewSectionReader(t.f, e.offset, e.size)), e.size, nil
		case tar.TypeSymlink:
			if strings.HasPrefix(e.link, "/") {
				name = cleanName(e.link)
			} else {
				name = cleanName(path.Join(path.Dir(name), e.link))
			}
		case tar.TypeLink:
			name = cleanName(e.link)
		default:
			return nil, 0, fmt.Errorf("%s: %s is not a regular file: %w", t.path, name, errdefs.ErrInvalidArgument)
		}
	}
	return nil, 0, fmt.Errorf("%s: too many links at %s: %w", t.path, name, errdefs.ErrInvalidArgument)
}

func (t *tarFiles) has(name string) bool {
	_, ok := t.entries[cleanName(name)]
	return ok
}

func (t *tarFiles) where() string { return t.path }
func (t *tarFiles) close() error  { return t.f.Close() }

// readSmall reads a JSON-sized file whole. what names it in errors; a
// missing file is ErrInvalidArgument (the source is incomplete).
func readSmall(src files, name, what string) ([]byte, error) {
	rc, size, err := src.open(name)
	if err != nil {
		return nil, classifyOpen(src, name, what, err)
	}
	defer func() { _ = rc.Close() }()
	if size > maxJSONSize {
		return nil, fmt.Errorf("%s: %s %s is %d bytes, more than %d: %w", src.where(), what, name, size, maxJSONSize, errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s %s: %w", src.where(), what, name, err)
	}
	return data, nil
}

// classifyOpen turns an open error into the store's classes: a missing
// member of an existing source is a malformed image.
func classifyOpen(src files, name, what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %s %s is missing: %w", src.where(), what, name, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%s: open %s %s: %w", src.where(), what, name, err)
}

// digestPattern is the only digest form the store handles.
func digestPattern() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) }

// checkDigest validates a digest string; it is used as a path component.
func checkDigest(d, what string) error {
	if digestPattern().MatchString(d) {
		return nil
	}
	if strings.Contains(d, ":") && !strings.HasPrefix(d, "sha256:") {
		return fmt.Errorf("%s %q: unsupported digest algorithm (only sha256): %w", what, d, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%s %q: malformed digest: %w", what, d, errdefs.ErrInvalidArgument)
}

// blobName is the layout path of a blob.
func blobName(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// digestOfName returns the digest a member name encodes ("blobs/sha256/<hex>"
// or "<hex>.json"), or "".
func digestOfName(name string) string {
	name = cleanName(name)
	base := strings.TrimSuffix(path.Base(name), ".json")
	if (strings.HasPrefix(name, "blobs/sha256/") || strings.HasSuffix(name, ".json")) && len(base) == 64 {
		if d := "sha256:" + base; digestPattern().MatchString(d) {
			return d
		}
	}
	return ""
}

// sha256Digest returns "sha256:<hex>" of data.
func sha256Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// readBlob reads a JSON blob by descriptor and verifies its size and digest.
func readBlob(src files, d descriptor, what string) ([]byte, error) {
	if err := checkDigest(d.Digest, what); err != nil {
		return nil, fmt.Errorf("%s: %w", src.where(), err)
	}
	data, err := readSmall(src, blobName(d.Digest), what)
	if err != nil {
		return nil, err
	}
	if got := sha256Digest(data); got != d.Digest {
		return nil, fmt.Errorf("%s: %s blob %s has digest %s: %w", src.where(), what, d.Digest, got, errdefs.ErrInvalidArgument)
	}
	if d.Size > 0 && int64(len(data)) != d.Size {
		return nil, fmt.Errorf("%s: %s blob %s is %d bytes, descriptor says %d: %w", src.where(), what, d.Digest, len(data), d.Size, errdefs.ErrInvalidArgument)
	}
	return data, nil
}
