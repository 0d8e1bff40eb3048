package builtin

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time of every entry: fixed, so digests repeat.
func epoch() time.Time { return time.Unix(0, 0) }

// entry is one file of a layer.
type entry struct {
	// name is a clean slash path relative to the root ("bin/sh").
	name string
	// kind is tar.TypeDir, tar.TypeReg or tar.TypeSymlink.
	kind byte
	// mode holds the permission bits and sticky bit (tar form).
	mode int64
	// link is a symlink's target.
	link string
	// data is a regular file's content when src is empty.
	data []byte
	// src is a host file whose content is copied; size is its size.
	src  string
	size int64
}

// tree is the set of entries of one layer, keyed by name.
type tree struct {
	entries map[string]entry
}

func newTree() *tree { return &tree{entries: map[string]entry{}} }

// add puts e in the tree with its parent directories (0755). A name that is
// already present keeps its first entry.
func (t *tree) add(e entry) {
	e.name = strings.TrimPrefix(path.Clean("/"+e.name), "/")
	if e.name == "" {
		return
	}
	t.addParents(e.name)
	if _, ok := t.entries[e.name]; ok {
		return
	}
	t.entries[e.name] = e
}

func (t *tree) addParents(name string) {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := t.entries[dir]; !ok {
			t.entries[dir] = entry{name: dir, kind: tar.TypeDir, mode: 0o755}
		}
	}
}

// has reports whether name is in the tree.
func (t *tree) has(name string) bool {
	_, ok := t.entries[strings.TrimPrefix(path.Clean("/"+name), "/")]
	return ok
}

// sorted returns the entries in name order, which puts every directory
// before its contents.
func (t *tree) sorted() []entry {
	out := make([]entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// layerBlob is a written layer: the compressed blob and the digest of the
// uncompressed tar.
type layerBlob struct {
	digest string
	size   int64
	diffID string
}

// writeLayer writes t as a gzip-compressed tar blob into blobsDir.
func writeLayer(blobsDir string, t *tree) (layerBlob, error) {
	tmp, err := os.CreateTemp(blobsDir, ".layer-*")
	if err != nil {
		return layerBlob{}, fmt.Errorf("builtin: layer: %w", err)
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()

	blobHash, diffHash := sha256.New(), sha256.New()
	counter := &countWriter{}
	gz, err := gzip.NewWriterLevel(io.MultiWriter(tmp, blobHash, counter), gzip.DefaultCompression)
	if err != nil {
		return layerBlob{}, fmt.Errorf("builtin: layer: %w", err)
	}
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	for _, e := range t.sorted() {
		if err := writeEntry(tw, e); err != nil {
			return layerBlob{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return layerBlob{}, fmt.Errorf("builtin: layer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return layerBlob{}, fmt.Errorf("builtin: layer: %w", err)
	}
	lb := layerBlob{digest: digestOf(blobHash), size: counter.n, diffID: digestOf(diffHash)}
	if err := commitBlob(tmp, blobsDir, lb.digest); err != nil {
		return layerBlob{}, err
	}
	return lb, nil
}

// writeEntry writes one tar header and its content.
func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Typeflag: e.kind,
		Name:     e.name,
		Mode:     e.mode,
		ModTime:  epoch(),
		Linkname: e.link,
	}
	if e.kind == tar.TypeDir {
		hdr.Name += "/"
	}
	if e.kind == tar.TypeReg {
		hdr.Size = int64(len(e.data))
		if e.src != "" {
			hdr.Size = e.size
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("builtin: tar header %s: %w", e.name, err)
	}
	if e.kind != tar.TypeReg {
		return nil
	}
	if e.src == "" {
		_, err := tw.Write(e.data)
		return wrapTar(e.name, err)
	}
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("builtin: %s: %w", e.name, err)
	}
	defer func() { _ = f.Close() }()
	// CopyN fails if the host file shrank since it was looked at; a file
	// that grew is cut at the recorded size, and tar refuses a short write.
	_, err = io.CopyN(tw, f, e.size)
	return wrapTar(e.name, err)
}

func wrapTar(name string, err error) error {
	if err != nil {
		return fmt.Errorf("builtin: tar %s: %w", name, err)
	}
	return nil
}

// writeBlob stores data as a blob and returns its digest.
func writeBlob(blobsDir string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	tmp, err := os.CreateTemp(blobsDir, ".blob-*")
	if err != nil {
		return "", fmt.Errorf("builtin: blob: %w", err)
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		return "", fmt.Errorf("builtin: blob: %w", err)
	}
	return digest, commitBlob(tmp, blobsDir, digest)
}

// commitBlob fsyncs tmp and renames it to its digest's name.
func commitBlob(tmp *os.File, blobsDir, digest string) error {
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("builtin: blob %s: %w", digest, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("builtin: blob %s: %w", digest, err)
	}
	name := blobsDir + "/" + strings.TrimPrefix(digest, "sha256:")
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("builtin: blob %s: %w", digest, err)
	}
	return nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
