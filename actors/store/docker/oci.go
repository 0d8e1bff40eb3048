package docker

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// Media types the store reads.
const (
	mediaTypeOCIIndex        = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIConfig       = "application/vnd.oci.image.config.v1+json"
	mediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
	maxIndexDepth            = 4
)

// layerMediaTypes are the layer blobs Extract handles (it detects the
// compression itself).
func layerMediaTypes() map[string]bool {
	return map[string]bool{
		"application/vnd.oci.image.layer.v1.tar":                       true,
		"application/vnd.oci.image.layer.v1.tar+gzip":                  true,
		"application/vnd.oci.image.layer.v1.tar+zstd":                  true,
		"application/vnd.oci.image.layer.nondistributable.v1.tar":      true,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": true,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":            true,
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":    true,
	}
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant,omitempty"`
	} `json:"platform,omitempty"`
}

type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// resolveOCI reads the image tagged tag (or the only one) from an OCI
// layout.
func resolveOCI(src files, tag string) (plan, error) {
	data, err := readSmall(src, "index.json", "index")
	if err != nil {
		return plan{}, err
	}
	var idx ociIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return plan{}, fmt.Errorf("%s: malformed index.json: %v: %w", src.where(), err, errdefs.ErrInvalidArgument)
	}
	d, err := selectTagged(src, idx, tag)
	if err != nil {
		return plan{}, err
	}
	refs := descriptorRefs(d)
	d, err = resolveIndex(src, d, 0)
	if err != nil {
		return plan{}, err
	}
	p, err := readOCIManifest(src, d)
	if err != nil {
		return plan{}, err
	}
	p.refs = refs
	return p, nil
}

// selectTagged picks the descriptor of index.json annotated with tag, or the
// only one when tag is empty.
func selectTagged(src files, idx ociIndex, tag string) (descriptor, error) {
	if tag == "" {
		if len(idx.Manifests) == 1 {
			return idx.Manifests[0], nil
		}
		return descriptor{}, fmt.Errorf("%s: index.json lists %d images; name one with oci:PATH:TAG: %w", src.where(), len(idx.Manifests), errdefs.ErrInvalidArgument)
	}
	var tags []string
	for _, d := range idx.Manifests {
		name := d.Annotations[annotationRefName]
		if name == tag {
			return d, nil
		}
		if name != "" {
			tags = append(tags, name)
		}
	}
	return descriptor{}, fmt.Errorf("%s: no image tagged %q (tags: %s): %w", src.where(), tag, strings.Join(tags, ", "), errdefs.ErrNotFound)
}

// descriptorRefs returns the Docker references a descriptor's annotations
// give the image: containerd's image name, or a ref name that is a full
// reference.
func descriptorRefs(d descriptor) []string {
	var refs []string
	for _, key := range []string{annotationContainerdName, annotationRefName} {
		v := d.Annotations[key]
		if v == "" || (key == annotationRefName && !strings.ContainsAny(v, "/")) {
			continue
		}
		if n, err := parseNamed(v); err == nil {
			refs = append(refs, n.String())
		}
	}
	return refs
}

// resolveIndex follows image indexes (multi-arch) down to the manifest for
// linux/<runtime.GOARCH>.
func resolveIndex(src files, d descriptor, depth int) (descriptor, error) {
	switch d.MediaType {
	case mediaTypeOCIManifest, mediaTypeDockerManifest:
		return d, nil
	case mediaTypeOCIIndex, mediaTypeDockerList:
	default:
		return descriptor{}, fmt.Errorf("%s: %s has unsupported media type %q: %w", src.where(), d.Digest, d.MediaType, errdefs.ErrInvalidArgument)
	}
	if depth >= maxIndexDepth {
		return descriptor{}, fmt.Errorf("%s: image indexes nested more than %d deep: %w", src.where(), maxIndexDepth, errdefs.ErrInvalidArgument)
	}
	data, err := readBlob(src, d, "image index")
	if err != nil {
		return descriptor{}, err
	}
	var idx ociIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return descriptor{}, fmt.Errorf("%s: malformed image index %s: %v: %w", src.where(), d.Digest, err, errdefs.ErrInvalidArgument)
	}
	m, ok := pickPlatform(idx.Manifests)
	if !ok {
		return descriptor{}, fmt.Errorf("%s: image index %s has no image for linux/%s: %w", src.where(), d.Digest, runtime.GOARCH, errdefs.ErrNotFound)
	}
	return resolveIndex(src, m, depth+1)
}

// pickPlatform chooses the entry for linux/GOARCH; for arm64 an entry
// without variant or with v8 is preferred over another variant.
func pickPlatform(ds []descriptor) (descriptor, bool) {
	var fallback *descriptor
	for i, d := range ds {
		p := d.Platform
		if p == nil || p.OS != "linux" || p.Architecture != runtime.GOARCH {
			continue
		}
		if p.Variant == "" || (runtime.GOARCH == "arm64" && p.Variant == "v8") {
			return d, true
		}
		if fallback == nil {
			fallback = &ds[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return descriptor{}, false
}

// readOCIManifest reads an image manifest and its config into a plan.
func readOCIManifest(src files, d descriptor) (plan, error) {
	data, err := readBlob(src, d, "manifest")
	if err != nil {
		return plan{}, err
	}
	var m ociManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return plan{}, fmt.Errorf("%s: malformed manifest %s: %v: %w", src.where(), d.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.MediaType != "" && m.MediaType != d.MediaType {
		return plan{}, fmt.Errorf("%s: manifest %s says media type %q, its descriptor %q: %w", src.where(), d.Digest, m.MediaType, d.MediaType, errdefs.ErrInvalidArgument)
	}
	if m.Config.MediaType != mediaTypeOCIConfig && m.Config.MediaType != mediaTypeDockerConfig {
		return plan{}, fmt.Errorf("%s: manifest %s: config has unsupported media type %q: %w", src.where(), d.Digest, m.Config.MediaType, errdefs.ErrInvalidArgument)
	}
	cfgData, err := readBlob(src, m.Config, "config")
	if err != nil {
		return plan{}, err
	}
	cfg, err := parseConfig(cfgData, src.where()+": config "+m.Config.Digest, len(m.Layers))
	if err != nil {
		return plan{}, err
	}
	p := newPlan(cfg, cfgData)
	p.digest = d.Digest
	supported := layerMediaTypes()
	for i, l := range m.Layers {
		if !supported[l.MediaType] {
			return plan{}, fmt.Errorf("%s: layer %s has unsupported media type %q: %w", src.where(), l.Digest, l.MediaType, errdefs.ErrInvalidArgument)
		}
		if err := checkDigest(l.Digest, "layer"); err != nil {
			return plan{}, fmt.Errorf("%s: %w", src.where(), err)
		}
		name := blobName(l.Digest)
		p.layers = append(p.layers, layerSource{
			diffID: cfg.RootFS.DiffIDs[i], digest: l.Digest, size: l.Size, name: name,
			open: openFunc(src, name, "layer"),
		})
	}
	return p, nil
}
