package docker

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// saveManifest is one element of a `docker save` manifest.json.
type saveManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// resolveArchive reads an image from a `docker save` tarball: through
// manifest.json when present (Docker 1.10+, legacy and 25+ alike), else as
// the OCI layout a Docker 25+ archive also is. want, when set, picks the
// image among several.
func resolveArchive(t *tarFiles, want *named) (plan, error) {
	if t.has("manifest.json") {
		return resolveSaveManifest(t, want)
	}
	if t.has("index.json") {
		tag := ""
		if want != nil {
			tag = want.tag
		}
		return resolveOCI(t, tag)
	}
	return plan{}, fmt.Errorf("docker-archive %s: no manifest.json and no index.json (archives of Docker before 1.10 are not supported): %w", t.path, errdefs.ErrInvalidArgument)
}

// resolveSaveManifest follows manifest.json.
func resolveSaveManifest(t *tarFiles, want *named) (plan, error) {
	data, err := readSmall(t, "manifest.json", "manifest")
	if err != nil {
		return plan{}, err
	}
	var ms []saveManifest
	if err := json.Unmarshal(data, &ms); err != nil {
		return plan{}, fmt.Errorf("docker-archive %s: malformed manifest.json: %v: %w", t.path, err, errdefs.ErrInvalidArgument)
	}
	m, err := pickSaved(t.path, ms, want)
	if err != nil {
		return plan{}, err
	}
	if m.Config == "" {
		return plan{}, fmt.Errorf("docker-archive %s: manifest.json entry has no Config: %w", t.path, errdefs.ErrInvalidArgument)
	}
	cfgData, err := readSmall(t, m.Config, "config")
	if err != nil {
		return plan{}, err
	}
	// A config stored under its digest ("blobs/sha256/<hex>", "<hex>.json")
	// must hash to it.
	if d := digestOfName(m.Config); d != "" && sha256Digest(cfgData) != d {
		return plan{}, fmt.Errorf("docker-archive %s: config %s has digest %s: %w", t.path, m.Config, sha256Digest(cfgData), errdefs.ErrInvalidArgument)
	}
	cfg, err := parseConfig(cfgData, "docker-archive "+t.path+": config "+m.Config, len(m.Layers))
	if err != nil {
		return plan{}, err
	}
	p := newPlan(cfg, cfgData)
	p.digest = p.configDigest
	for _, tag := range m.RepoTags {
		if n, err := parseNamed(tag); err == nil {
			p.refs = append(p.refs, n.String())
		}
	}
	for i, name := range m.Layers {
		ls := layerSource{diffID: cfg.RootFS.DiffIDs[i], size: -1, name: name, open: openFunc(t, name, "layer")}
		if strings.HasPrefix(cleanName(name), "blobs/sha256/") {
			ls.digest = digestOfName(name)
		}
		p.layers = append(p.layers, ls)
	}
	return p, nil
}

// pickSaved chooses the manifest.json entry: the one tagged want, else the
// only one.
func pickSaved(path string, ms []saveManifest, want *named) (saveManifest, error) {
	if want != nil {
		for _, m := range ms {
			for _, tag := range m.RepoTags {
				if normalize(tag) == want.String() {
					return m, nil
				}
			}
		}
	}
	switch len(ms) {
	case 1:
		return ms[0], nil
	case 0:
		return saveManifest{}, fmt.Errorf("docker-archive %s: manifest.json lists no image: %w", path, errdefs.ErrInvalidArgument)
	}
	if want != nil {
		return saveManifest{}, fmt.Errorf("docker-archive %s: no image tagged %s among %d: %w", path, want, len(ms), errdefs.ErrNotFound)
	}
	return saveManifest{}, fmt.Errorf("docker-archive %s: holds %d images; name one with docker-archive:PATH:NAME:TAG: %w", path, len(ms), errdefs.ErrInvalidArgument)
}
