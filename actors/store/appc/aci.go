package appc

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// IDMismatchError is an image whose content does not hash to the id it was
// asked for under. Nothing of it is stored. Class errdefs.ErrInvalidArgument.
type IDMismatchError struct {
	Source, Want, Got string
}

func (e *IDMismatchError) Error() string {
	return fmt.Sprintf("appc: %s: image id is %s, want %s", e.Source, e.Got, e.Want)
}

// Unwrap gives the error class.
func (e *IDMismatchError) Unwrap() error { return errdefs.ErrInvalidArgument }

// Compression magic numbers the archive package does not detect itself.
var (
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// unpacked is an ACI extracted into a staging directory.
type unpacked struct {
	dir      string // holds manifest and rootfs/
	id       string
	manifest Manifest
	raw      []byte // the manifest as in the image
	size     int64  // bytes of regular files in rootfs/
}

// unpack extracts the ACI read from r into dir (empty) and checks it: the
// image id is the SHA-512 of the uncompressed tar (computed while
// extracting), the archive holds exactly "manifest" (a regular file) and
// "rootfs" (a directory), and the manifest is valid. Extraction goes
// through process/archive, which rejects escaping names, writes through
// symlinks, hard links out of the tree and device nodes. The whole archive
// is extracted into dir, giving Mesos's image layout, and the top level is
// checked afterwards: dir is a staging directory, so nothing of a bad
// archive is ever visible in the store. gzip and zstd are decompressed by
// process/archive, bzip2 here; xz is refused.
func unpack(ctx context.Context, r io.Reader, dir, source string, o archive.Options) (unpacked, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(len(xzMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return unpacked{}, fmt.Errorf("appc: read %s: %w", source, err)
	}
	var in io.Reader = br
	switch {
	case bytes.HasPrefix(magic, xzMagic):
		return unpacked{}, fmt.Errorf("appc: %s is xz-compressed, which Berth does not read; recompress it with gzip (xz -dc X.aci | gzip > Y.aci): %w", source, errdefs.ErrNotImplemented)
	case bytes.HasPrefix(magic, bzip2Magic):
		in = bzip2.NewReader(br)
	}
	h := sha512.New()
	o.TarHash = h
	res, err := archive.Extract(ctx, in, dir, o)
	if err != nil {
		return unpacked{}, fmt.Errorf("appc: %s: %w", source, err)
	}
	u := unpacked{dir: dir, id: "sha512-" + hex.EncodeToString(h.Sum(nil)), size: res.Size}
	if err := checkTopLevel(dir, source); err != nil {
		return unpacked{}, err
	}
	u.raw, err = readManifest(dir)
	if err != nil {
		return unpacked{}, fmt.Errorf("appc: %s: %w", source, err)
	}
	// The size is the rootfs's: the manifest is not part of it.
	u.size -= int64(len(u.raw))
	u.manifest, err = ParseManifest(u.raw)
	if err != nil {
		return unpacked{}, fmt.Errorf("appc: %s: %w", source, err)
	}
	return u, nil
}

// checkTopLevel enforces the ACI rule: only "manifest" (a regular file) and
// "rootfs" (a directory) at the top. Lstat: neither may be a symlink.
func checkTopLevel(dir, source string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("appc: %s: %w", source, err)
	}
	var haveManifest, haveRootfs bool
	for _, e := range ents {
		switch {
		case e.Name() == "manifest" && e.Type().IsRegular():
			haveManifest = true
		case e.Name() == "rootfs" && e.IsDir():
			haveRootfs = true
		default:
			return fmt.Errorf("appc: %s: the archive holds %q (%v) at its top; an ACI holds only a manifest file and a rootfs directory: %w", source, e.Name(), e.Type(), errdefs.ErrInvalidArgument)
		}
	}
	if !haveManifest {
		return fmt.Errorf("appc: %s: no manifest file: %w", source, errdefs.ErrInvalidArgument)
	}
	if !haveRootfs {
		return fmt.Errorf("appc: %s: no rootfs directory: %w", source, errdefs.ErrInvalidArgument)
	}
	return nil
}

// readManifest reads <dir>/manifest without following a symlink there
// (O_NOFOLLOW), bounded in size.
func readManifest(dir string) ([]byte, error) {
	f, err := os.OpenFile(filepath.Join(dir, "manifest"), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no manifest: %w", errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("manifest: %w (%w)", err, errdefs.ErrInvalidArgument)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("manifest is not a regular file: %w", errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return data, nil
}
