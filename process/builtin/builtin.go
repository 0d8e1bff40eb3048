package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Reference is the reference of the built-in default image.
const Reference = "localhost/berth/default:latest"

// RefName is the tag of the image in the layout's index.json (annotation
// org.opencontainers.image.ref.name).
const RefName = "latest"

// MarkerFile is written last into a complete layout; it holds the manifest
// digest.
const MarkerFile = ".berth-builtin"

// OCI media types and annotations written.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
	annotationRefName = "org.opencontainers.image.ref.name"
	defaultPath       = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Options tune BuildWith.
type Options struct {
	// Busybox selects the tools layer: "" finds the host's busybox and uses
	// it when usable, falling back to the host's shell and tools; "none"
	// never uses busybox; a path uses that busybox or fails.
	Busybox string
}

// Build builds the built-in image as an OCI layout in dir (see the package
// doc) and returns dir. A complete layout already in dir is reused.
func Build(ctx context.Context, dir string) (string, error) {
	return BuildWith(ctx, dir, Options{})
}

// BuildWith is Build with options.
func BuildWith(ctx context.Context, dir string, o Options) (string, error) {
	if complete(dir) {
		return dir, nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("builtin: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("builtin: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("builtin: %w", err)
	}
	if err := writeLayout(ctx, tmp, o); err != nil {
		return "", err
	}
	return dir, install(tmp, dir)
}

// complete reports whether dir holds a finished layout.
func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, MarkerFile))
	return err == nil
}

// install renames the finished layout tmp to dir, replacing an unfinished
// one. If another build finished first, its layout is kept.
func install(tmp, dir string) error {
	if !complete(dir) {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("builtin: remove unfinished %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if complete(dir) {
			return nil
		}
		return fmt.Errorf("builtin: install %s: %w", dir, err)
	}
	return syncDir(filepath.Dir(dir))
}

// writeLayout writes the whole layout into dir, the marker last.
func writeLayout(ctx context.Context, dir string, o Options) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return fmt.Errorf("builtin: %w", err)
	}
	tools, kind, err := toolsLayer(ctx, o)
	if err != nil {
		return err
	}
	var layers []layerBlob
	for _, t := range []*tree{baseLayer(), tools} {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("builtin: %w", err)
		}
		lb, err := writeLayer(blobs, t)
		if err != nil {
			return err
		}
		layers = append(layers, lb)
	}
	manifest, err := writeImage(blobs, layers, kind)
	if err != nil {
		return err
	}
	if err := writeJSONFile(filepath.Join(dir, "oci-layout"), map[string]string{"imageLayoutVersion": "1.0.0"}); err != nil {
		return err
	}
	if err := writeJSONFile(filepath.Join(dir, "index.json"), indexFor(manifest)); err != nil {
		return err
	}
	if err := syncDir(blobs); err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dir, MarkerFile), []byte(manifest.Digest+"\n"))
}

// writeImage writes the config and manifest blobs and returns the manifest's
// descriptor.
func writeImage(blobs string, layers []layerBlob, kind string) (descriptor, error) {
	arch, variant := ociArch()
	cfg := imageConfig{
		Created:      "1970-01-01T00:00:00Z",
		Architecture: arch,
		Variant:      variant,
		OS:           "linux",
		Config:       runtimeConfig{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"/bin/sh"}},
		RootFS:       rootFS{Type: "layers"},
		History: []history{
			{Created: "1970-01-01T00:00:00Z", CreatedBy: "berth builtin: base directories and /etc"},
			{Created: "1970-01-01T00:00:00Z", CreatedBy: "berth builtin: " + kind + " from the host"},
		},
	}
	m := manifest{SchemaVersion: 2, MediaType: mediaTypeManifest}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		m.Layers = append(m.Layers, descriptor{MediaType: mediaTypeLayerGz, Digest: l.digest, Size: l.size})
	}
	cfgDesc, err := writeJSONBlob(blobs, mediaTypeConfig, cfg)
	if err != nil {
		return descriptor{}, err
	}
	m.Config = cfgDesc
	return writeJSONBlob(blobs, mediaTypeManifest, m)
}

// indexFor is index.json naming the manifest "latest".
func indexFor(m descriptor) index {
	arch, variant := ociArch()
	m.Annotations = map[string]string{annotationRefName: RefName}
	m.Platform = &platform{Architecture: arch, OS: "linux", Variant: variant}
	return index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{m}}
}

func writeJSONBlob(blobs, mediaType string, v any) (descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, fmt.Errorf("builtin: marshal %s: %w", mediaType, err)
	}
	digest, err := writeBlob(blobs, data)
	if err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: digest, Size: int64(len(data))}, nil
}

func writeJSONFile(p string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("builtin: marshal %s: %w", p, err)
	}
	return writeFileSync(p, data)
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("builtin: %w", err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("builtin: write %s: %w", p, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("builtin: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("builtin: fsync %s: %w", dir, err)
	}
	return nil
}

// ManifestDigest returns the manifest digest recorded in a complete layout
// built by Build (errors wrap fs.ErrNotExist when dir is not complete).
func ManifestDigest(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, MarkerFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("builtin: %s is not a complete layout: %w", dir, err)
		}
		return "", fmt.Errorf("builtin: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
