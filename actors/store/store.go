// Package store holds the image Store interface, its Go types, and the generic
// actor that serves any Store over protobuf messages. Implementations (docker,
// appc) live in subpackages and are plain Go.
package store

import (
	"context"
	"time"
)

// ImageConfig is the runtime configuration an image carries.
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	Labels       map[string]string
	OS           string
	Architecture string
}

// Image is an image in a store, with its layers extracted on disk.
type Image struct {
	// Reference is the canonical name (docker.io/library/busybox:latest).
	Reference string
	// Digest identifies the image: the manifest digest, or the config digest
	// when the source has no manifest digest.
	Digest string
	// ConfigDigest is the digest of the image config blob.
	ConfigDigest string
	// LayerIDs are the layers' diff ids ("sha256:<hex>"), bottom first.
	LayerIDs []string
	// Layers are the extracted layer directories, bottom first.
	Layers []string
	// Config is the runtime configuration.
	Config ImageConfig
	// Size is the unpacked size of the layers in bytes.
	Size uint64
	// Created is the image's creation time (zero if unknown).
	Created time.Time
	// Source says where the image came from: docker-archive:PATH, oci:PATH[:TAG],
	// builtin, or a registry.
	Source string
}

// PruneResult reports what a prune removed.
type PruneResult struct {
	RemovedImages  []string
	RemovedLayers  []string
	ReclaimedBytes uint64
}

// RecoverResult reports what a recover found.
type RecoverResult struct {
	Images  int
	Dropped []string
}

// Store resolves image references to extracted layers (Mesos's Store).
// Implementations are safe for concurrent use; concurrent Gets of one image
// cause one pull.
type Store interface {
	// Get returns the image, importing or pulling it when it is not cached (or
	// when cached is false). backend names the rootfs backend the layers are
	// for. Unknown images are errdefs.ErrNotFound; malformed ones
	// errdefs.ErrInvalidArgument.
	Get(ctx context.Context, ref string, backend string, cached bool) (Image, error)
	// List returns the stored images, sorted by reference.
	List(ctx context.Context) ([]Image, error)
	// Remove forgets an image; its layers go at the next Prune.
	Remove(ctx context.Context, ref string) error
	// Prune removes images not excluded and layers that no remaining image
	// references and that are not in activeLayers.
	Prune(ctx context.Context, excluded, activeLayers []string) (PruneResult, error)
	// Recover loads the metadata, checks every layer, drops incomplete images and
	// removes leftover staging directories.
	Recover(ctx context.Context) (RecoverResult, error)
}
