// Package provisioner holds the provisioner actor (Mesos's ProvisionerProcess):
// it turns a container's image into a root filesystem by asking a store for
// the image's layers and a backend to stack them, destroys the rootfses when
// the container goes, recovers them after a restart and prunes images.
//
// On-disk layout (paths.go), as Mesos's:
//
//	<work_dir>/provisioner/
//	  containers/<id>/
//	    layers                               provisionerv1.ContainerLayers (atomic)
//	    backends/<backend>/
//	      rootfses/<uuid>/                   a rootfs the backend built
//	      scratch/<uuid>/                    backend scratch (overlay upper/work)
package provisioner

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	"github.com/berthrt/berth/process/checkpoint"
)

// Layout computes the provisioner's paths under its root,
// <work_dir>/provisioner.
type Layout struct{ Root string }

// ContainersDir holds one directory per container.
func (l Layout) ContainersDir() string { return filepath.Join(l.Root, "containers") }

// ContainerDir is a container's directory.
func (l Layout) ContainerDir(id string) string { return filepath.Join(l.ContainersDir(), id) }

// LayersFile is the container's layers checkpoint.
func (l Layout) LayersFile(id string) string { return filepath.Join(l.ContainerDir(id), "layers") }

// BackendDir is a backend's per-container directory.
func (l Layout) BackendDir(id, backend string) string {
	return filepath.Join(l.ContainerDir(id), "backends", backend)
}

// RootfsDir is one rootfs of a container.
func (l Layout) RootfsDir(id, backend, rootfsID string) string {
	return filepath.Join(l.BackendDir(id, backend), "rootfses", rootfsID)
}

// rootfsRef names one rootfs.
type rootfsRef struct {
	Backend string
	ID      string
}

// newRootfsID returns a random id for a new rootfs.
func newRootfsID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rootfs id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// listContainers returns the container directories found on disk with their
// rootfses, for recovery. Entries that are not directories or have unsafe
// names are ignored.
func (l Layout) listContainers() (map[string][]rootfsRef, error) {
	out := map[string][]rootfsRef{}
	entries, err := os.ReadDir(l.ContainersDir())
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.ContainersDir(), err)
	}
	for _, e := range entries {
		if !e.IsDir() || !safeName.MatchString(e.Name()) {
			continue
		}
		id := e.Name()
		out[id] = nil
		backends, err := os.ReadDir(filepath.Join(l.ContainerDir(id), "backends"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list backends of %s: %w", id, err)
		}
		for _, b := range backends {
			if !b.IsDir() || !safeName.MatchString(b.Name()) {
				continue
			}
			rootfses, err := os.ReadDir(filepath.Join(l.BackendDir(id, b.Name()), "rootfses"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("list rootfses of %s/%s: %w", id, b.Name(), err)
			}
			for _, r := range rootfses {
				if safeName.MatchString(r.Name()) {
					out[id] = append(out[id], rootfsRef{Backend: b.Name(), ID: r.Name()})
				}
			}
		}
	}
	return out, nil
}

// InUse returns the layer paths and image references recorded in every
// container's layers checkpoint under root (<work_dir>/provisioner): what a
// prune must keep.
func InUse(root string) (layers, images []string, err error) {
	l := Layout{Root: root}
	found, err := l.listContainers()
	if err != nil {
		return nil, nil, err
	}
	for id := range found {
		cl := &provisionerv1.ContainerLayers{}
		if err := checkpoint.Read(l.LayersFile(id), cl); err == nil {
			layers = append(layers, cl.GetPaths()...)
			images = append(images, imagesOf(cl)...)
		}
	}
	return layers, images, nil
}

// imagesOf returns the images a checkpoint records; checkpoints written
// before image_references existed name one image.
func imagesOf(cl *provisionerv1.ContainerLayers) []string {
	if refs := cl.GetImageReferences(); len(refs) > 0 {
		return refs
	}
	if ref := cl.GetImageReference(); ref != "" {
		return []string{ref}
	}
	return nil
}
