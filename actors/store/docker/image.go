package docker

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/process/errdefs"
)

// plan is an image read from its source, before its layers are in the
// cache.
type plan struct {
	digest       string
	configDigest string
	config       store.ImageConfig
	created      time.Time
	// refs are the image's own names (RepoTags, annotations), canonical.
	refs   []string
	layers []layerSource
}

// layerSource is one layer to extract.
type layerSource struct {
	// diffID is what the config says the uncompressed tar hashes to.
	diffID string
	// digest and size are the blob's, verified while reading ("" and -1
	// when the source does not say, as in a legacy `docker save`).
	digest string
	size   int64
	// name is the member or blob name, for messages.
	name string
	// open opens the blob and says its size (-1 when unknown).
	open func() (io.ReadCloser, int64, error)
	// remote is set for blobs downloaded from a registry.
	remote bool
}

// configJSON is the part of a Docker / OCI image config the store reads.
type configJSON struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	OS           string `json:"os"`
	Config       *struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// parseConfig reads an image config and checks it against the number of
// layers the manifest lists.
func parseConfig(data []byte, where string, layers int) (configJSON, error) {
	var c configJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: malformed image config: %v: %w", where, err, errdefs.ErrInvalidArgument)
	}
	if c.RootFS.Type != "layers" {
		return c, fmt.Errorf("%s: image config rootfs.type is %q, want \"layers\": %w", where, c.RootFS.Type, errdefs.ErrInvalidArgument)
	}
	if len(c.RootFS.DiffIDs) != layers {
		return c, fmt.Errorf("%s: image config lists %d diff ids for %d layers: %w", where, len(c.RootFS.DiffIDs), layers, errdefs.ErrInvalidArgument)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := checkDigest(d, "diff id"); err != nil {
			return c, fmt.Errorf("%s: image config: %w", where, err)
		}
	}
	return c, nil
}

// imageConfig converts the config to the store's form.
func (c configJSON) imageConfig() store.ImageConfig {
	ic := store.ImageConfig{OS: c.OS, Architecture: c.Architecture}
	if c.Config != nil {
		ic.Entrypoint, ic.Cmd, ic.Env = c.Config.Entrypoint, c.Config.Cmd, c.Config.Env
		ic.WorkingDir, ic.User, ic.Labels = c.Config.WorkingDir, c.Config.User, c.Config.Labels
	}
	return ic
}

// createdTime parses the config's creation time (zero when absent or bad).
func (c configJSON) createdTime() time.Time {
	t, err := time.Parse(time.RFC3339Nano, c.Created)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// newPlan fills a plan from a parsed config.
func newPlan(c configJSON, configData []byte) plan {
	return plan{
		configDigest: sha256Digest(configData),
		config:       c.imageConfig(),
		created:      c.createdTime(),
	}
}

// openFunc returns a function opening name in src, classifying errors.
func openFunc(src files, name, what string) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		rc, size, err := src.open(name)
		if err != nil {
			return nil, 0, classifyOpen(src, name, what, err)
		}
		return rc, size, nil
	}
}
