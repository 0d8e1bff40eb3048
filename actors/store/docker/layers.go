package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// extractParallelism bounds the layers of one import extracted at once:
// decompression is the cost, and this machine class has 2 cores.
const extractParallelism = 4

// sizeFile holds a layer's unpacked size (decimal bytes) beside its rootfs.
const sizeFile = "size"

// whiteoutFormat is the whiteout form the layers for backend are extracted
// in: overlayfs reads its own form (0/0 character devices and
// trusted.overlay.opaque), kept beside the AUFS form as "rootfs.overlay";
// copy, bind and aufs read ".wh." files.
func whiteoutFormat(backend string) archive.WhiteoutFormat {
	if backend == "overlay" {
		return archive.WhiteoutOverlay
	}
	return archive.WhiteoutAUFS
}

// rootfsName is the directory of a layer's files in one whiteout form:
// "rootfs" for AUFS (Mesos's name), "rootfs.overlay" for overlay.
func rootfsName(wf archive.WhiteoutFormat) string {
	if wf == archive.WhiteoutAUFS {
		return "rootfs"
	}
	return "rootfs.overlay"
}

// layerDir is <Dir>/layers/<diff id>.
func (s *Store) layerDir(id string) string { return filepath.Join(s.layersDir, id) }

// rootfsPath is the extracted layer: <Dir>/layers/<diff id>/rootfs.
func (s *Store) rootfsPath(id string, wf archive.WhiteoutFormat) string {
	return filepath.Join(s.layerDir(id), rootfsName(wf))
}

// layerExists reports whether the layer is in the cache in form wf. A
// rootfs only ever appears by a rename of a complete extraction.
func (s *Store) layerExists(id string, wf archive.WhiteoutFormat) bool {
	fi, err := os.Stat(s.rootfsPath(id, wf))
	return err == nil && fi.IsDir()
}

// ensureLayers puts every layer of p in the cache, extracting the missing
// ones in parallel, and returns the unpacked size of the distinct layers.
func (s *Store) ensureLayers(ctx context.Context, layers []layerSource, wf archive.WhiteoutFormat) (uint64, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(extractParallelism)
	seen := map[string]bool{}
	sizes := make([]int64, len(layers))
	distinct := make([]bool, len(layers))
	for i, l := range layers {
		distinct[i] = !seen[l.diffID]
		seen[l.diffID] = true
		if distinct[i] {
			s.newLayerProgress(ctx, l).report(store.PhaseWaiting, 0)
		}
	}
	for i, l := range layers {
		if !distinct[i] {
			continue
		}
		g.Go(func() error {
			n, err := s.ensureLayer(gctx, l, wf)
			sizes[i] = n
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var total uint64
	for _, n := range sizes {
		total += uint64(n)
	}
	return total, nil
}

// ensureLayer returns the size of a cached layer, extracting it first when
// it is missing. Concurrent extractions of one layer (from two images) are
// coalesced.
func (s *Store) ensureLayer(ctx context.Context, l layerSource, wf archive.WhiteoutFormat) (int64, error) {
	if s.layerExists(l.diffID, wf) {
		s.reportCached(ctx, l)
		return s.layerSize(l.diffID), nil
	}
	v, err := s.layerFlights.Do(ctx, l.diffID+"/"+rootfsName(wf), func(ctx context.Context) (any, error) {
		if s.layerExists(l.diffID, wf) {
			s.reportCached(ctx, l)
			return s.layerSize(l.diffID), nil
		}
		return s.extractLayer(ctx, l, wf)
	})
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// reportCached reports a layer found in the cache: its blob was not read.
func (s *Store) reportCached(ctx context.Context, l layerSource) {
	lp := s.newLayerProgress(ctx, l)
	lp.report(store.PhaseCached, lp.total)
}

// extractLayer extracts one layer into <Dir>/staging/<random>/rootfs,
// verifies the blob digest and the diff id, and renames it into the cache.
// On any failure the staging directory is removed and the cache is
// untouched.
func (s *Store) extractLayer(ctx context.Context, l layerSource, wf archive.WhiteoutFormat) (int64, error) {
	stage, err := os.MkdirTemp(s.stagingDir, "layer-")
	if err != nil {
		return 0, fmt.Errorf("docker store: staging: %w", err)
	}
	s.stagingCreated.Add(1)
	defer func() { _ = os.RemoveAll(stage) }()
	rootfs := filepath.Join(stage, rootfsName(wf))
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return 0, fmt.Errorf("docker store: staging: %w", err)
	}
	lp := s.newLayerProgress(ctx, l)
	res, err := s.extract(ctx, l, rootfs, wf, lp)
	if err != nil {
		return 0, err
	}
	if lp.bytesPhase != store.PhaseExtracting {
		// Downloaded and unpacked: what is left is the flush and the move.
		lp.report(store.PhaseExtracting, lp.current)
	}
	if err := os.WriteFile(filepath.Join(stage, sizeFile), []byte(strconv.FormatInt(res.Size, 10)), 0o600); err != nil {
		return 0, fmt.Errorf("docker store: layer %s: %w", l.diffID, err)
	}
	if err := store.SyncFS(stage); err != nil {
		return 0, err
	}
	if err := s.install(stage, l.diffID, wf); err != nil {
		return 0, err
	}
	lp.report(store.PhaseDone, lp.current)
	return s.layerSize(l.diffID), nil
}

// extract runs archive.Extract over the layer blob, hashing the blob as it
// goes, and checks the blob digest, its size and the diff id.
// Progress goes to lp: the bytes read, then their final count.
func (s *Store) extract(ctx context.Context, l layerSource, rootfs string, wf archive.WhiteoutFormat, lp *layerProgress) (archive.Result, error) {
	rc, size, err := l.open()
	if err != nil {
		return archive.Result{}, err
	}
	defer func() { _ = rc.Close() }()
	lp.start(size)
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(rc, h), onRead: lp.read}
	s.extractions.Add(1)
	res, err := archive.Extract(ctx, counted, rootfs, archive.Options{Whiteouts: wf, NoChown: s.noChown})
	if err != nil {
		return res, fmt.Errorf("docker store: layer %s (%s): %w", l.diffID, l.name, err)
	}
	// The blob digest covers every byte, also those after the end of the
	// tar or of the compressed stream.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return res, fmt.Errorf("docker store: layer %s (%s): %w", l.diffID, l.name, err)
	}
	lp.finish(counted.n)
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); l.digest != "" && got != l.digest {
		return res, fmt.Errorf("docker store: layer blob %s has digest %s: %w", l.digest, got, errdefs.ErrInvalidArgument)
	}
	if l.size > 0 && counted.n != l.size {
		return res, fmt.Errorf("docker store: layer blob %s is %d bytes, the manifest says %d: %w", l.name, counted.n, l.size, errdefs.ErrInvalidArgument)
	}
	if res.DiffID != l.diffID {
		return res, fmt.Errorf("docker store: layer %s unpacks to diff id %s, the image config says %s: %w", l.name, res.DiffID, l.diffID, errdefs.ErrInvalidArgument)
	}
	return res, nil
}

// install moves a finished extraction into the cache: the whole staging dir
// becomes layers/<id> when the layer is new; else only its rootfs moves in.
// When another extraction won the race, ours is discarded.
func (s *Store) install(stage, id string, wf archive.WhiteoutFormat) error {
	dst := s.layerDir(id)
	err := os.Rename(stage, dst)
	if err == nil {
		return checkpoint.SyncDir(s.layersDir)
	}
	if !isExists(err) {
		return fmt.Errorf("docker store: install layer %s: %w", id, err)
	}
	if s.layerExists(id, wf) {
		return nil
	}
	if err := os.Rename(filepath.Join(stage, rootfsName(wf)), s.rootfsPath(id, wf)); err != nil && !isExists(err) {
		return fmt.Errorf("docker store: install layer %s: %w", id, err)
	}
	return checkpoint.SyncDir(dst)
}

// isExists reports a rename onto a non-empty directory.
func isExists(err error) bool {
	return errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// layerSize reads a layer's recorded size, or measures it.
func (s *Store) layerSize(id string) int64 {
	data, err := os.ReadFile(filepath.Join(s.layerDir(id), sizeFile))
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			return n
		}
	}
	return store.DirSize(s.layerDir(id))
}

// countingReader counts the bytes read through it and tells onRead (when
// set) the count after each read.
type countingReader struct {
	r      io.Reader
	n      int64
	onRead func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 && c.onRead != nil {
		c.onRead(c.n)
	}
	return n, err
}
