package appc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/store"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// maxDepth bounds the dependency chain of an image.
const maxDepth = 64

// infoFile is Berth's record beside an image's manifest and rootfs: its
// size and where it came from (storev1.StoredImage, written atomically).
const infoFile = "info"

// Options configure a Store.
type Options struct {
	// Dir is the store directory, <work_dir>/store/appc (required).
	Dir string
	// DiscoveryPrefix is the simple discovery URL prefix
	// (--appc_simple_discovery_uri_prefix); "" turns discovery off.
	DiscoveryPrefix string
	// Client fetches over HTTP (nil: a client whose redirects obey the
	// same transport policy as the first URL).
	Client *http.Client
	// MaxBytes caps the uncompressed size of one ACI (0: the archive
	// package's default).
	MaxBytes int64
	// Logger logs imports, drops and prunes (nil: no logs).
	Logger *zap.Logger
}

// record is an image in the store.
type record struct {
	id       string
	manifest Manifest
	size     int64
	source   string
	stored   time.Time
}

// reference is how the image is listed: NAME[:VERSION].
func (r *record) reference() string {
	if v, ok := r.manifest.Labels.Get(LabelVersion); ok {
		return r.manifest.Name + ":" + v
	}
	return r.manifest.Name
}

// CycleError is a dependency cycle among images. Class
// errdefs.ErrInvalidArgument.
type CycleError struct {
	// Chain names the images of the cycle, the first repeated last.
	Chain []string
}

func (e *CycleError) Error() string {
	return "appc: dependency cycle: " + strings.Join(e.Chain, " -> ")
}

// Unwrap gives the error class.
func (e *CycleError) Unwrap() error { return errdefs.ErrInvalidArgument }

// Store is the appc image store (Mesos's appc::Store with its simple
// discovery fetcher). It is safe for concurrent use.
type Store struct {
	o                                          Options
	dir, imagesDir, stagingDir, removedDir, in string
	log                                        *zap.Logger
	client                                     *http.Client
	noChown                                    bool

	// fetches coalesces concurrent fetches of one URL.
	fetches store.Flights
	// importMu serialises scans of the import directory.
	importMu sync.Mutex
	// gc keeps Remove, Prune and Recover (writers) away from Gets
	// (readers).
	gc sync.RWMutex

	mu     sync.Mutex
	images map[string]*record // by id
	loaded bool

	// fetchRuns counts fetches that reached the network (tests).
	fetchRuns atomic.Int64
}

var _ store.Store = (*Store)(nil)

// New returns a store over o.Dir, creating its directories. It reads
// nothing yet: Recover (or the first call) scans the images.
func New(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("appc store: no directory: %w", errdefs.ErrInvalidArgument)
	}
	if o.DiscoveryPrefix != "" {
		if _, err := prefixScheme(o.DiscoveryPrefix); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("appc store: %w", err)
	}
	s := &Store{
		o: o, dir: dir,
		imagesDir:  filepath.Join(dir, "images"),
		stagingDir: filepath.Join(dir, "staging"),
		removedDir: filepath.Join(dir, "removed"),
		in:         filepath.Join(dir, "import"),
		log:        o.Logger,
		client:     o.Client,
		noChown:    os.Geteuid() != 0,
		images:     map[string]*record{},
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.client == nil {
		s.client = newHTTPClient()
	}
	for _, d := range []string{dir, s.imagesDir, s.stagingDir, s.removedDir, s.in} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("appc store: %w", err)
		}
	}
	return s, nil
}

// ImportDir is where ACI files dropped by a user are imported from.
func (s *Store) ImportDir() string { return s.in }

// ensureLoaded scans the images once when Recover has not run.
func (s *Store) ensureLoaded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		s.images, _ = s.scanLocked()
		s.loaded = true
	}
}

// Get returns the image ref names (see ParseReference) with its
// dependencies resolved: Layers are their rootfs directories, bottom first,
// each image once. An image is taken from the store, else from the import
// directory, else fetched by simple discovery (always when cached is false
// and the image is named by name). See the package doc.
func (s *Store) Get(ctx context.Context, ref, _ string, cached bool) (store.Image, error) {
	req, err := ParseReference(ref)
	if err != nil {
		return store.Image{}, err
	}
	s.ensureLoaded()
	s.gc.RLock()
	defer s.gc.RUnlock()
	rec, ids, err := s.resolve(ctx, req, cached, false, nil)
	if err != nil {
		return store.Image{}, err
	}
	return s.image(rec, ids)
}

// resolve finds the image req names and its dependencies, recursively,
// and returns the image and its layer ids, bottom first without repeats.
// stack holds the ids being resolved (cycle detection). offline resolves
// from the store alone.
func (s *Store) resolve(ctx context.Context, req Request, cached, offline bool, stack []*record) (*record, []string, error) {
	if len(stack) > maxDepth {
		return nil, nil, fmt.Errorf("appc image %s: dependencies nest deeper than %d: %w", req, maxDepth, errdefs.ErrInvalidArgument)
	}
	rec, err := s.find(ctx, req, cached, offline)
	if err != nil {
		return nil, nil, err
	}
	for i, r := range stack {
		if r.id == rec.id {
			var chain []string
			for _, c := range stack[i:] {
				chain = append(chain, c.reference())
			}
			return nil, nil, &CycleError{Chain: append(chain, rec.reference())}
		}
	}
	stack = append(stack, rec)
	var ids []string
	for _, d := range rec.manifest.Dependencies {
		dreq := Request{ID: d.ImageID, Name: d.ImageName, Labels: d.Labels.Map()}
		_, dids, err := s.resolve(ctx, dreq, true, offline, stack)
		if err != nil {
			var cycle *CycleError
			if errors.As(err, &cycle) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("appc image %s: dependency %s: %w", rec.reference(), dreq, err)
		}
		ids = append(ids, dids...)
	}
	return rec, dedup(append(ids, rec.id)), nil
}

// dedup keeps the first occurrence of every id: an image that two
// dependencies share is stacked once, at its lowest place.
func dedup(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// find returns the one image req names: by id from the store, the import
// directory or (with a name) discovery, checked against the id; by name
// from the store when cached, else the import directory, else discovery.
func (s *Store) find(ctx context.Context, req Request, cached, offline bool) (*record, error) {
	if req.ID != "" {
		if rec := s.byID(req.ID); rec != nil {
			return rec, nil
		}
		if !offline {
			if err := s.importDropped(ctx); err != nil {
				return nil, err
			}
			if rec := s.byID(req.ID); rec != nil {
				return rec, nil
			}
			if req.Name != "" && s.o.DiscoveryPrefix != "" {
				return s.discover(ctx, req.withPlatform(), req.ID)
			}
		}
		return nil, fmt.Errorf("appc image %s is not in the store %s (put its ACI in %s, or name it so that it can be discovered): %w", req.ID, s.dir, s.in, errdefs.ErrNotFound)
	}
	preq := req.withPlatform()
	if cached || offline || s.o.DiscoveryPrefix == "" {
		if rec := s.match(preq); rec != nil {
			return rec, nil
		}
	}
	if offline {
		return nil, fmt.Errorf("appc image %s is not in the store: %w", preq, errdefs.ErrNotFound)
	}
	if err := s.importDropped(ctx); err != nil {
		return nil, err
	}
	if cached || s.o.DiscoveryPrefix == "" {
		if rec := s.match(preq); rec != nil {
			return rec, nil
		}
	}
	if s.o.DiscoveryPrefix == "" {
		return nil, fmt.Errorf("appc image %s is not in the store %s and simple discovery is off (--appc_simple_discovery_uri_prefix): %w", preq, s.dir, errdefs.ErrNotFound)
	}
	return s.discover(ctx, preq, "")
}

// byID returns the stored image id, or nil.
func (s *Store) byID(id string) *record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.images[id]
}

// match returns the stored image that req matches, the most recently
// stored first (then by id, for a stable answer), or nil.
func (s *Store) match(req Request) *record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *record
	for _, r := range s.images {
		if !req.matches(r.manifest) {
			continue
		}
		if best == nil || r.stored.After(best.stored) || (r.stored.Equal(best.stored) && r.id < best.id) {
			best = r
		}
	}
	return best
}

// discover fetches the image by simple discovery; concurrent fetches of
// one URL are one. wantID, when set, is the id the content must hash to.
func (s *Store) discover(ctx context.Context, req Request, wantID string) (*record, error) {
	u, err := SimpleDiscoveryURL(s.o.DiscoveryPrefix, req)
	if err != nil {
		return nil, err
	}
	v, err := s.fetches.Do(ctx, u+"#"+wantID, func(ctx context.Context) (any, error) {
		s.fetchRuns.Add(1)
		rc, err := open(ctx, s.client, u)
		if err != nil {
			return nil, err
		}
		defer func() { _ = rc.Close() }()
		return s.importStream(ctx, rc, u, func(up unpacked) error {
			if wantID != "" && up.id != wantID {
				return &IDMismatchError{Source: u, Want: wantID, Got: up.id}
			}
			// Discovery's rule: the manifest carries the name and the
			// labels asked for.
			if !req.matches(up.manifest) {
				return fmt.Errorf("appc: %s holds image %s with labels %v, not %s: %w", u, up.manifest.Name, up.manifest.Labels.Map(), req, errdefs.ErrInvalidArgument)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return v.(*record), nil
}

// importStream extracts an ACI into staging, checks it (check may refuse
// it) and publishes it as images/<id> with one rename. Whatever fails,
// staging is cleaned and the store unchanged.
func (s *Store) importStream(ctx context.Context, r io.Reader, source string, check func(unpacked) error) (*record, error) {
	stage, err := os.MkdirTemp(s.stagingDir, "aci-")
	if err != nil {
		return nil, fmt.Errorf("appc store: %w", err)
	}
	published := false
	defer func() {
		if !published {
			_ = os.RemoveAll(stage)
		}
	}()
	up, err := unpack(ctx, r, stage, source, archive.Options{NoChown: s.noChown, MaxBytes: s.o.MaxBytes})
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(up); err != nil {
			return nil, err
		}
	}
	if len(up.manifest.PathWhitelist) > 0 {
		s.log.Warn("appc store: the image's pathWhitelist is not applied; the rootfs holds every file of the image and its dependencies",
			zap.String("image", up.manifest.Name), zap.String("id", up.id))
	}
	if rec := s.byID(up.id); rec != nil {
		return rec, nil
	}
	rec := &record{id: up.id, manifest: up.manifest, size: up.size, source: source}
	if err := checkpoint.Write(filepath.Join(stage, infoFile), recordInfo(rec)); err != nil {
		return nil, err
	}
	if err := store.SyncFS(stage); err != nil {
		return nil, err
	}
	final := filepath.Join(s.imagesDir, up.id)
	if err := os.Rename(stage, final); err != nil {
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
			return nil, fmt.Errorf("appc store: publish %s: %w", up.id, err)
		}
		// Stored meanwhile (by another process sharing the directory).
		rec, err = s.load(up.id)
		if err != nil {
			return nil, err
		}
	} else {
		published = true
		if err := store.SyncFS(s.imagesDir); err != nil {
			return nil, err
		}
		rec.stored = statTime(filepath.Join(final, infoFile))
	}
	s.mu.Lock()
	s.images[rec.id] = rec
	s.mu.Unlock()
	s.log.Info("appc store: stored image", zap.String("image", rec.reference()), zap.String("id", rec.id), zap.String("source", source), zap.Int64("bytes", rec.size))
	return rec, nil
}

// recordInfo is the info file of a record.
func recordInfo(r *record) *storev1.StoredImage {
	return &storev1.StoredImage{
		Info:   &storev1.ImageInfo{Reference: r.reference(), Digest: r.id, SizeBytes: uint64(r.size)},
		Source: r.source,
	}
}

func statTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// importDropped imports every *.aci file of the import directory. An
// imported file is deleted; a file that is not a valid ACI is renamed
// *.aci.rejected (and logged) so that it is not tried again. Other
// failures (a full disk, a cancelled ctx) leave the file and are returned.
func (s *Store) importDropped(ctx context.Context) error {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	ents, err := os.ReadDir(s.in)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("appc store: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".aci") {
			continue
		}
		p := filepath.Join(s.in, e.Name())
		rec, err := s.importFile(ctx, p)
		switch {
		case err == nil:
			s.log.Info("appc store: imported", zap.String("file", p), zap.String("id", rec.id))
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("appc store: %w", err)
			}
		case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrNotImplemented):
			s.log.Warn("appc store: rejected a dropped ACI", zap.String("file", p), zap.Error(err))
			if rerr := os.Rename(p, p+".rejected"); rerr != nil {
				return fmt.Errorf("appc store: %w", rerr)
			}
		default:
			return err
		}
	}
	return nil
}

// importFile imports one ACI file (not through a symlink).
func (s *Store) importFile(ctx context.Context, p string) (*record, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("appc store: %w", err)
	}
	defer func() { _ = f.Close() }()
	return s.importStream(ctx, f, "file://"+p, nil)
}

// Import stores the ACI file at path and returns it, with the layers of
// the dependencies the store holds.
func (s *Store) Import(ctx context.Context, path string) (store.Image, error) {
	s.ensureLoaded()
	s.gc.RLock()
	defer s.gc.RUnlock()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return store.Image{}, fmt.Errorf("appc: no file %s: %w", path, errdefs.ErrNotFound)
	}
	if err != nil {
		return store.Image{}, fmt.Errorf("appc: %w", err)
	}
	defer func() { _ = f.Close() }()
	rec, err := s.importStream(ctx, f, "file://"+path, nil)
	if err != nil {
		return store.Image{}, err
	}
	// Its dependencies as far as the store has them (Get fetches the rest).
	_, ids, err := s.resolve(ctx, Request{ID: rec.id}, true, true, nil)
	if err != nil {
		ids = []string{rec.id}
	}
	return s.image(rec, ids)
}

// load reads images/<id>: a valid id as its name, a valid manifest, a
// rootfs directory. A missing or unreadable info file is made again.
func (s *Store) load(id string) (*record, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not an image id: %w", id, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Join(s.imagesDir, id)
	raw, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(filepath.Join(dir, "rootfs"))
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("no rootfs directory: %w", errdefs.ErrInvalidArgument)
	}
	rec := &record{id: id, manifest: m}
	info := &storev1.StoredImage{}
	infoPath := filepath.Join(dir, infoFile)
	if err := checkpoint.Read(infoPath, info); err == nil && info.GetInfo().GetDigest() == id {
		rec.size, rec.source = int64(info.GetInfo().GetSizeBytes()), info.GetSource()
	} else {
		// Put there by hand (Mesos's layout) or by an older Berth.
		rec.size, rec.source = store.DirSize(filepath.Join(dir, "rootfs")), "local"
		if err := checkpoint.Write(infoPath, recordInfo(rec)); err != nil {
			return nil, err
		}
	}
	rec.stored = statTime(infoPath)
	return rec, nil
}

// scanLocked reads every image directory; the ones that do not load are
// returned as dropped (by name), not loaded. s.mu must be held.
func (s *Store) scanLocked() (map[string]*record, map[string]error) {
	images := map[string]*record{}
	dropped := map[string]error{}
	ents, err := os.ReadDir(s.imagesDir)
	if err != nil {
		return images, dropped
	}
	for _, e := range ents {
		rec, err := s.load(e.Name())
		if err != nil {
			dropped[e.Name()] = err
			continue
		}
		images[rec.id] = rec
	}
	return images, dropped
}

// image is the store.Image of rec with its layers ids.
func (s *Store) image(rec *record, ids []string) (store.Image, error) {
	img := store.Image{
		Reference: rec.reference(),
		Digest:    rec.id,
		LayerIDs:  ids,
		Created:   created(rec.manifest),
		Source:    rec.source,
	}
	for _, id := range ids {
		img.Layers = append(img.Layers, filepath.Join(s.imagesDir, id, "rootfs"))
		if r := s.byID(id); r != nil {
			img.Size += uint64(r.size)
		}
	}
	cfg, err := imageConfig(rec.manifest, img.Layers)
	if err != nil {
		return store.Image{}, err
	}
	img.Config = cfg
	return img, nil
}

// sorted returns the records by reference, then id.
func (s *Store) sorted() []*record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*record, 0, len(s.images))
	for _, r := range s.images {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].reference(), out[j].reference(); a != b {
			return a < b
		}
		return out[i].id < out[j].id
	})
	return out
}

// List returns the stored images sorted by reference, each with the layers
// its dependencies in the store give (a dependency not in the store is
// left out: Get fetches it).
func (s *Store) List(ctx context.Context) ([]store.Image, error) {
	s.ensureLoaded()
	var out []store.Image
	for _, rec := range s.sorted() {
		_, ids, err := s.resolve(ctx, Request{ID: rec.id}, true, true, nil)
		if err != nil {
			ids = []string{rec.id}
		}
		img, err := s.image(rec, ids)
		if err != nil {
			img = store.Image{Reference: rec.reference(), Digest: rec.id, LayerIDs: []string{rec.id}, Source: rec.source, Size: uint64(rec.size)}
		}
		out = append(out, img)
	}
	return out, nil
}

// selectRecords returns the stored images ref names: one by id (or an id
// prefix of at least 12 hex digits), or every image of a name that
// matches its labels.
func (s *Store) selectRecords(ref string) ([]*record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hex, ok := strings.CutPrefix(strings.TrimPrefix(ref, Prefix), "sha512-"); ok && len(hex) >= 12 && len(hex) < 128 {
		var out []*record
		for id, r := range s.images {
			if strings.HasPrefix(id, "sha512-"+hex) {
				out = append(out, r)
			}
		}
		if len(out) > 1 {
			return nil, fmt.Errorf("appc image id prefix %s is ambiguous (%d images): %w", ref, len(out), errdefs.ErrInvalidArgument)
		}
		return out, nil
	}
	req, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if req.ID != "" {
		if r := s.images[req.ID]; r != nil {
			return []*record{r}, nil
		}
		return nil, nil
	}
	req = req.withPlatform()
	var out []*record
	for _, r := range s.images {
		if req.matches(r.manifest) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Remove takes the images ref names out of the store at once: their
// directories move to <Dir>/removed/ (containers whose rootfs stacks them
// keep working), and go at the next Prune unless a container still uses
// them.
func (s *Store) Remove(ctx context.Context, ref string) error {
	s.ensureLoaded()
	s.gc.Lock()
	defer s.gc.Unlock()
	recs, err := s.selectRecords(ref)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("appc image %s: %w", ref, errdefs.ErrNotFound)
	}
	for _, r := range recs {
		src := filepath.Join(s.imagesDir, r.id)
		dst := filepath.Join(s.removedDir, r.id)
		if err := os.Rename(src, dst); err != nil {
			if !errors.Is(err, fs.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
				return fmt.Errorf("appc store: remove %s: %w", r.id, err)
			}
			if err := s.discard(src); err != nil {
				return err
			}
		}
		s.mu.Lock()
		delete(s.images, r.id)
		s.mu.Unlock()
		s.log.Info("appc store: removed image", zap.String("image", r.reference()), zap.String("id", r.id))
	}
	return nil
}

// discard removes a directory atomically (store.DiscardDir).
func (s *Store) discard(dir string) error { return store.DiscardDir(s.stagingDir, dir) }

// idOf returns the image id of an active layer given as an id or as a path
// under <Dir>/images or <Dir>/removed ("" for anything else).
func (s *Store) idOf(a string) string {
	if ValidID(a) {
		return a
	}
	for _, base := range []string{s.imagesDir, s.removedDir} {
		rel, err := filepath.Rel(base, filepath.Clean(a))
		if err == nil && filepath.IsLocal(rel) {
			return strings.Split(rel, string(filepath.Separator))[0]
		}
	}
	return ""
}

// Prune removes every image that is not excluded (references in any form
// ParseReference reads, or ids; others are ignored), not a dependency of
// an excluded one in the store, and not active (activeLayers: layer paths
// or ids), and every removed image no longer active. It waits for Gets in
// flight.
func (s *Store) Prune(ctx context.Context, excluded, activeLayers []string) (store.PruneResult, error) {
	s.ensureLoaded()
	s.gc.Lock()
	defer s.gc.Unlock()
	keep := map[string]bool{}
	for _, a := range activeLayers {
		if id := s.idOf(a); id != "" {
			keep[id] = true
		}
	}
	for _, ex := range excluded {
		recs, err := s.selectRecords(ex)
		if err != nil {
			continue
		}
		for _, r := range recs {
			_, ids, err := s.resolve(ctx, Request{ID: r.id}, true, true, nil)
			if err != nil {
				ids = []string{r.id}
			}
			for _, id := range ids {
				keep[id] = true
			}
		}
	}
	var res store.PruneResult
	var errs []error
	for _, r := range s.sorted() {
		if keep[r.id] {
			continue
		}
		if err := s.discard(filepath.Join(s.imagesDir, r.id)); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		delete(s.images, r.id)
		s.mu.Unlock()
		res.RemovedImages = append(res.RemovedImages, r.reference())
		res.RemovedLayers = append(res.RemovedLayers, r.id)
		res.ReclaimedBytes += uint64(r.size)
	}
	removed, err := os.ReadDir(s.removedDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("appc store: %w", err))
	}
	for _, e := range removed {
		if keep[e.Name()] {
			continue
		}
		dir := filepath.Join(s.removedDir, e.Name())
		size := store.DirSize(filepath.Join(dir, "rootfs"))
		if err := s.discard(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		res.RemovedLayers = append(res.RemovedLayers, e.Name())
		res.ReclaimedBytes += uint64(size)
	}
	s.log.Info("appc store: pruned", zap.Strings("images", res.RemovedImages), zap.Int("layers", len(res.RemovedLayers)), zap.Uint64("bytes", res.ReclaimedBytes))
	return res, errors.Join(errs...)
}

// Recover empties staging (extractions a crash interrupted), loads every
// image directory, drops (deletes) the ones that are not complete images,
// and imports the ACIs waiting in the import directory.
func (s *Store) Recover(ctx context.Context) (store.RecoverResult, error) {
	s.gc.Lock()
	defer s.gc.Unlock()
	ents, err := os.ReadDir(s.stagingDir)
	if err != nil {
		return store.RecoverResult{}, fmt.Errorf("appc store: recover: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.stagingDir, e.Name())); err != nil {
			return store.RecoverResult{}, fmt.Errorf("appc store: recover: clear staging: %w", err)
		}
	}
	s.mu.Lock()
	images, dropped := s.scanLocked()
	s.images, s.loaded = images, true
	s.mu.Unlock()
	var res store.RecoverResult
	for name, why := range dropped {
		s.log.Warn("appc store: dropping an incomplete or corrupt image", zap.String("dir", filepath.Join(s.imagesDir, name)), zap.Error(why))
		if err := s.discard(filepath.Join(s.imagesDir, name)); err != nil {
			return res, err
		}
		res.Dropped = append(res.Dropped, name)
	}
	sort.Strings(res.Dropped)
	if err := s.importDropped(ctx); err != nil {
		return res, err
	}
	s.mu.Lock()
	res.Images = len(s.images)
	s.mu.Unlock()
	return res, nil
}
