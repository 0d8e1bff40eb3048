package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// Options configure a Store.
type Options struct {
	// Dir is the store directory, <work_dir>/store/docker (required).
	Dir string
	// TarballDir, when set, is a directory of `docker save` tarballs that
	// plain names are imported from: NAME is looked up as
	// TarballDir/<NAME as typed>.tar, then <familiar NAME:TAG>.tar, then
	// <canonical NAME:TAG>.tar (Mesos's naming: "busybox:latest.tar";
	// slashes in a name are subdirectories).
	TarballDir string
	// Builtin builds the built-in image's OCI layout in the directory given
	// and returns the layout's path (process/builtin.Build). Nil disables
	// the built-in image.
	Builtin func(ctx context.Context, dir string) (string, error)
	// Registry, when set, enables registry pulls: a name that is not in the
	// store (or asked for with cached false) is pulled from its registry,
	// and names without a registry (docker.io) from this one. HOST[:PORT]
	// or http(s)://HOST[:PORT]; plain HTTP only for loopback hosts, which
	// are always spoken to in plain HTTP.
	Registry string
	// DockerConfig is a Docker config.json holding registry logins
	// (Mesos's --docker_config); "" pulls anonymously.
	DockerConfig string
	// CredentialHelperPath is the search path (a PATH-like list) for the
	// docker-credential-<name> programs that credsStore and credHelpers of
	// DockerConfig name; "" searches $PATH.
	CredentialHelperPath string
	// CredentialHelperTimeout bounds one run of a credential helper
	// (0: 30 s).
	CredentialHelperTimeout time.Duration
	// ProgressInterval is the shortest time between two reports of a
	// layer's bytes read (0: 100 ms); see store.WithProgress.
	ProgressInterval time.Duration
	// BuiltinReference is the reference that selects the built-in image.
	BuiltinReference string
	// Logger logs imports, drops and prunes (nil: no logs).
	Logger *zap.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Store is the docker image store (Mesos's docker::Store with its
// MetadataManager). It is safe for concurrent use.
type Store struct {
	o                                    Options
	dir, layersDir, stagingDir, metaPath string
	log                                  *zap.Logger
	now                                  func() time.Time
	noChown                              bool
	// registry is Options.Registry as HOST[:PORT] ("" when pulls are off).
	registry string
	// creds are the logins of Options.DockerConfig.
	creds credentials

	// imports coalesces Gets of one image; layerFlights extractions of one
	// layer wanted by two images.
	imports, layerFlights store.Flights
	// gc keeps Prune and Recover (writers) away from imports in flight
	// (readers), so that no layer is removed between its extraction and
	// the metadata that names it.
	gc sync.RWMutex

	mu     sync.Mutex
	images map[string]store.Image // by reference; Layers empty
	loaded bool

	// Counters for tests.
	importRuns, extractions, stagingCreated atomic.Int64
}

var _ store.Store = (*Store)(nil)

// New returns a store over o.Dir, creating its directories. It reads
// nothing yet: Recover (or the first call) loads the metadata.
func New(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("docker store: no directory: %w", errdefs.ErrInvalidArgument)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("docker store: %w", err)
	}
	s := &Store{
		o: o, dir: dir,
		layersDir:  filepath.Join(dir, "layers"),
		stagingDir: filepath.Join(dir, "staging"),
		metaPath:   filepath.Join(dir, metadataFile),
		log:        o.Logger,
		now:        o.Now,
		noChown:    os.Geteuid() != 0,
		images:     map[string]store.Image{},
	}
	creds, err := loadCredentials(o.DockerConfig, o.CredentialHelperPath, o.CredentialHelperTimeout)
	if err != nil {
		return nil, err
	}
	s.creds = creds
	if o.Registry != "" {
		host, err := parseRegistry(o.Registry)
		if err != nil {
			return nil, err
		}
		s.registry = host
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, d := range []string{dir, s.layersDir, s.stagingDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("docker store: %w", err)
		}
	}
	return s, nil
}

// ensureLoaded loads the metadata once when Recover has not run.
func (s *Store) ensureLoaded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		s.images = s.loadMetadata()
		s.loaded = true
	}
}

// Get returns the image ref, importing it when it is not cached or cached
// is false. See the package doc for the references understood.
func (s *Store) Get(ctx context.Context, ref, backend string, cached bool) (store.Image, error) {
	req, err := s.parseRequest(ref)
	if err != nil {
		return store.Image{}, err
	}
	s.ensureLoaded()
	wf := whiteoutFormat(backend)
	if cached {
		if img, ok := s.lookup(req, wf); ok {
			return img, nil
		}
	}
	v, err := s.imports.Do(ctx, req.key()+"#"+rootfsName(wf), func(ctx context.Context) (any, error) {
		return s.load(ctx, req, wf, cached)
	})
	if err != nil {
		return store.Image{}, err
	}
	return v.(store.Image), nil
}

// load is one coalesced Get: the cache once more, then an import.
func (s *Store) load(ctx context.Context, req request, wf archive.WhiteoutFormat, cached bool) (store.Image, error) {
	if cached {
		if img, ok := s.lookup(req, wf); ok {
			return img, nil
		}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	src, err := s.resolve(ctx, req, wf, cached)
	if err != nil {
		return store.Image{}, err
	}
	if src.cached != nil {
		return *src.cached, nil
	}
	defer src.close()
	return s.importPlan(ctx, src, wf)
}

// resolved is where an import reads from, or a stored image to serve.
type resolved struct {
	plan              plan
	reference, source string
	close             func()
	cached            *store.Image
}

// resolve reads the image's manifest and config from its source.
func (s *Store) resolve(ctx context.Context, req request, wf archive.WhiteoutFormat, cached bool) (resolved, error) {
	switch req.kind {
	case kindArchive:
		return s.resolveArchiveFile(req.path, req.want, req.source, "")
	case kindOCI:
		return s.resolveLayout(req.path, req.tag, req.source, "")
	case kindBuiltin:
		dir, err := s.o.Builtin(ctx, filepath.Join(s.dir, "builtin"))
		if err != nil {
			return resolved{}, fmt.Errorf("docker store: build the built-in image: %w", err)
		}
		return s.resolveLayout(dir, "", sourceBuiltin, req.reference)
	}
	return s.resolveName(ctx, req, wf, cached)
}

// resolveName finds a plain name: in TarballDir, else from the archive or
// layout it was imported from, else from its registry when pulls are on,
// else as stored.
func (s *Store) resolveName(ctx context.Context, req request, wf archive.WhiteoutFormat, cached bool) (resolved, error) {
	var tried []string
	if s.o.TarballDir != "" {
		for _, c := range tarballCandidates(s.o.TarballDir, req.typed, *req.want) {
			if isFile(c) {
				return s.resolveArchiveFile(c, req.want, prefixArchive+c+":"+req.reference, req.reference)
			}
			tried = append(tried, c)
		}
	}
	s.mu.Lock()
	img, found := s.findLocked(req)
	s.mu.Unlock()
	if found && (!cached || !s.complete(img, wf)) {
		if r, ok := s.reread(img, req.reference); ok {
			return r, nil
		}
	}
	if s.registry != "" && (!found || !cached || !s.complete(img, wf)) {
		return s.resolveRegistry(ctx, req)
	}
	if found && s.complete(img, wf) {
		img = s.withLayers(img, wf)
		return resolved{cached: &img}, nil
	}
	msg := "it is not in the store"
	if len(tried) > 0 {
		msg += " and there is no tarball " + strings.Join(tried, " or ")
	}
	return resolved{}, fmt.Errorf("image %s: %s and no registry is configured (--docker_registry=HOST[:PORT]; or use docker-archive:PATH or oci:PATH): %w", req.reference, msg, errdefs.ErrNotFound)
}

// reread opens again the archive or layout an image was imported from,
// when it still exists.
func (s *Store) reread(img store.Image, reference string) (resolved, bool) {
	r, err := s.parseRequest(img.Source)
	if err != nil {
		return resolved{}, false
	}
	var res resolved
	switch r.kind {
	case kindArchive:
		res, err = s.resolveArchiveFile(r.path, r.want, r.source, reference)
	case kindOCI:
		res, err = s.resolveLayout(r.path, r.tag, r.source, reference)
	default:
		return resolved{}, false
	}
	return res, err == nil
}

// resolveArchiveFile reads a `docker save` tarball. reference, when set, is
// the name the image is stored under; else its own tag, else the source.
func (s *Store) resolveArchiveFile(path string, want *named, source, reference string) (resolved, error) {
	t, err := openTar(path)
	if err != nil {
		return resolved{}, err
	}
	p, err := resolveArchive(t, want)
	if err != nil {
		_ = t.close()
		return resolved{}, err
	}
	if reference == "" && want != nil {
		reference = want.String()
	}
	return resolved{plan: p, reference: pickReference(reference, p.refs, source), source: source, close: func() { _ = t.close() }}, nil
}

// resolveLayout reads an OCI layout directory.
func (s *Store) resolveLayout(dir, tag, source, reference string) (resolved, error) {
	if !isDir(dir) {
		return resolved{}, missing(dir)
	}
	p, err := resolveOCI(dirFiles{root: dir}, tag)
	if err != nil {
		return resolved{}, err
	}
	return resolved{plan: p, reference: pickReference(reference, p.refs, source), source: source, close: func() {}}, nil
}

// pickReference is the name an import is stored under: the one asked for,
// else the image's own first name, else its source.
func pickReference(asked string, own []string, source string) string {
	if asked != "" {
		return asked
	}
	if len(own) > 0 {
		return own[0]
	}
	return source
}

// importPlan puts the layers in the cache and records the image.
func (s *Store) importPlan(ctx context.Context, src resolved, wf archive.WhiteoutFormat) (store.Image, error) {
	s.importRuns.Add(1)
	start := s.now()
	size, err := s.ensureLayers(withReference(ctx, src.reference), src.plan.layers, wf)
	if err != nil {
		return store.Image{}, err
	}
	img := store.Image{
		Reference:    src.reference,
		Digest:       src.plan.digest,
		ConfigDigest: src.plan.configDigest,
		Config:       src.plan.config,
		Size:         size,
		Created:      src.plan.created,
		Source:       src.source,
	}
	for _, l := range src.plan.layers {
		img.LayerIDs = append(img.LayerIDs, l.diffID)
	}
	if err := s.put(img); err != nil {
		return store.Image{}, err
	}
	s.log.Info("docker store: imported image", zap.String("reference", img.Reference), zap.String("source", img.Source),
		zap.String("digest", img.Digest), zap.Int("layers", len(img.LayerIDs)), zap.Duration("took", s.now().Sub(start)))
	return s.withLayers(img, wf), nil
}

// put records an image and persists the metadata. A source holds one image
// at a time: an older record from the same source is replaced.
func (s *Store) put(img store.Image) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref, old := range s.images {
		if img.Source != sourceRegistry && old.Source == img.Source && ref != img.Reference {
			delete(s.images, ref)
		}
	}
	s.images[img.Reference] = img
	return s.persistLocked()
}

// lookup returns the stored image req names when its layers are cached in
// form wf.
func (s *Store) lookup(req request, wf archive.WhiteoutFormat) (store.Image, bool) {
	s.mu.Lock()
	img, ok := s.findLocked(req)
	s.mu.Unlock()
	if !ok || !s.complete(img, wf) {
		return store.Image{}, false
	}
	return s.withLayers(img, wf), true
}

// findLocked finds the record req names: by reference for names (or by
// repository and digest for NAME@DIGEST), by source for archives and
// layouts. s.mu must be held.
func (s *Store) findLocked(req request) (store.Image, bool) {
	if req.kind == kindArchive || req.kind == kindOCI {
		for _, img := range sortedImages(s.images) {
			if img.Source == req.source {
				return img, true
			}
		}
		return store.Image{}, false
	}
	if img, ok := s.images[req.reference]; ok {
		return img, true
	}
	if req.want == nil || req.want.digest == "" {
		return store.Image{}, false
	}
	for _, img := range sortedImages(s.images) {
		n, err := parseNamed(img.Reference)
		if err == nil && n.repository() == req.want.repository() && (img.Digest == req.want.digest || img.ConfigDigest == req.want.digest) {
			return img, true
		}
	}
	return store.Image{}, false
}

// complete reports whether every layer of img is cached in form wf.
func (s *Store) complete(img store.Image, wf archive.WhiteoutFormat) bool {
	for _, id := range img.LayerIDs {
		if !s.layerExists(id, wf) {
			return false
		}
	}
	return true
}

// withLayers returns img with its layer paths for form wf.
func (s *Store) withLayers(img store.Image, wf archive.WhiteoutFormat) store.Image {
	img.Layers = make([]string, len(img.LayerIDs))
	for i, id := range img.LayerIDs {
		img.Layers[i] = s.rootfsPath(id, wf)
	}
	return img
}

// List returns the stored images sorted by reference, with their layer
// paths in AUFS form.
func (s *Store) List(ctx context.Context) ([]store.Image, error) {
	s.ensureLoaded()
	s.mu.Lock()
	defer s.mu.Unlock()
	imgs := sortedImages(s.images)
	for i := range imgs {
		imgs[i] = s.withLayers(imgs[i], archive.WhiteoutAUFS)
	}
	return imgs, nil
}

// Remove forgets an image, named by its reference or its source; its layers
// go at the next Prune.
func (s *Store) Remove(ctx context.Context, ref string) error {
	s.ensureLoaded()
	keys := matchKeys([]string{ref})
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed bool
	for r, img := range s.images {
		if keys[img.Reference] || (img.Source != sourceRegistry && keys[img.Source]) {
			delete(s.images, r)
			removed = true
		}
	}
	if !removed {
		return fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	return s.persistLocked()
}

// matchKeys returns the forms under which refs may be stored: as given,
// normalised, and with an absolute source path.
func matchKeys(refs []string) map[string]bool {
	keys := map[string]bool{}
	for _, r := range refs {
		keys[r] = true
		keys[normalize(r)] = true
		for _, prefix := range []string{prefixArchive, prefixOCI} {
			if rest, ok := strings.CutPrefix(r, prefix); ok && rest != "" && !filepath.IsAbs(rest) {
				if abs, err := filepath.Abs(rest); err == nil {
					keys[prefix+abs] = true
				}
			}
		}
	}
	return keys
}

// Prune removes every image not in excluded, then every cached layer that
// no remaining image uses and that is not in activeLayers (layer paths
// under the store, such as <Dir>/layers/<id>/rootfs, or layer ids). It waits
// for imports in flight.
func (s *Store) Prune(ctx context.Context, excluded, activeLayers []string) (store.PruneResult, error) {
	s.ensureLoaded()
	s.gc.Lock()
	defer s.gc.Unlock()
	var res store.PruneResult
	retained, err := s.pruneImages(excluded, &res)
	if err != nil {
		return res, err
	}
	for _, a := range activeLayers {
		if id := s.layerIDOf(a); id != "" {
			retained[id] = true
		}
	}
	entries, err := os.ReadDir(s.layersDir)
	if err != nil {
		return res, fmt.Errorf("docker store: prune: %w", err)
	}
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if retained[id] || checkDigest(id, "layer") != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		size := store.DirSize(s.layerDir(id))
		if err := store.DiscardDir(s.stagingDir, s.layerDir(id)); err != nil {
			errs = append(errs, err)
			continue
		}
		res.RemovedLayers = append(res.RemovedLayers, id)
		res.ReclaimedBytes += uint64(size)
	}
	s.log.Info("docker store: pruned", zap.Strings("images", res.RemovedImages), zap.Int("layers", len(res.RemovedLayers)), zap.Uint64("bytes", res.ReclaimedBytes))
	return res, errors.Join(errs...)
}

// pruneImages forgets the images not excluded and returns the layer ids the
// others use.
func (s *Store) pruneImages(excluded []string, res *store.PruneResult) (map[string]bool, error) {
	keep := matchKeys(excluded)
	s.mu.Lock()
	defer s.mu.Unlock()
	retained := map[string]bool{}
	for ref, img := range s.images {
		if keep[img.Reference] || (img.Source != sourceRegistry && keep[img.Source]) {
			for _, id := range img.LayerIDs {
				retained[id] = true
			}
			continue
		}
		delete(s.images, ref)
		res.RemovedImages = append(res.RemovedImages, ref)
	}
	sort.Strings(res.RemovedImages)
	if len(res.RemovedImages) == 0 {
		return retained, nil
	}
	return retained, s.persistLocked()
}

// layerIDOf returns the layer id of an active layer given as an id or as a
// path under <Dir>/layers ("" for anything else).
func (s *Store) layerIDOf(a string) string {
	if checkDigest(a, "layer") == nil {
		return a
	}
	rel, err := filepath.Rel(s.layersDir, filepath.Clean(a))
	if err != nil || !filepath.IsLocal(rel) {
		return ""
	}
	return strings.Split(rel, string(filepath.Separator))[0]
}

// Recover loads the metadata, drops the images whose layers are missing,
// and removes leftover staging directories. A corrupt metadata file gives
// an empty store, not an error.
func (s *Store) Recover(ctx context.Context) (store.RecoverResult, error) {
	s.gc.Lock()
	defer s.gc.Unlock()
	if err := s.clearStaging(); err != nil {
		return store.RecoverResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images = s.loadMetadata()
	s.loaded = true
	var res store.RecoverResult
	for ref, img := range s.images {
		if !s.complete(img, archive.WhiteoutAUFS) && !s.complete(img, archive.WhiteoutOverlay) {
			delete(s.images, ref)
			res.Dropped = append(res.Dropped, ref)
		}
	}
	sort.Strings(res.Dropped)
	res.Images = len(s.images)
	if len(res.Dropped) > 0 {
		s.log.Warn("docker store: dropped images with missing layers", zap.Strings("images", res.Dropped))
		if err := s.persistLocked(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// clearStaging removes everything under <Dir>/staging and the built-in
// image's unfinished temporary layouts.
func (s *Store) clearStaging() error {
	entries, err := os.ReadDir(s.stagingDir)
	if err != nil {
		return fmt.Errorf("docker store: recover: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.stagingDir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(s.dir, ".builtin.tmp-*"))
	for _, t := range tmps {
		if err := os.RemoveAll(t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("docker store: recover: clear staging: %w", err)
	}
	return nil
}
