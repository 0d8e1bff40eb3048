package appc

import (
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/process/errdefs"
)

// Prefix selects the appc store on the command line: appc:NAME[:VERSION].
const Prefix = "appc:"

// Well-known labels (appc spec).
const (
	LabelVersion = "version"
	LabelOS      = "os"
	LabelArch    = "arch"
)

// Request names an image: by id, or by name and labels.
type Request struct {
	// ID is a full image id; it wins over Name.
	ID string
	// Name is the image name (an AC identifier).
	Name string
	// Labels select among the images of one name; a label absent here
	// matches any value.
	Labels map[string]string
}

// ParseReference parses the store's reference forms:
//
//	sha512-<128 hex>                          an image id
//	NAME[:VERSION][,LABEL=VALUE...]           a name, its version and labels
//
// optionally prefixed by "appc:". Label values are URL query-escaped
// ("%2C" for a comma). Anything else is errdefs.ErrInvalidArgument.
func ParseReference(ref string) (Request, error) {
	s := strings.TrimPrefix(ref, Prefix)
	if strings.HasPrefix(s, "sha512-") {
		if !ValidID(s) {
			return Request{}, fmt.Errorf("appc image id %q: want sha512- and 128 lowercase hex digits: %w", s, errdefs.ErrInvalidArgument)
		}
		return Request{ID: s}, nil
	}
	parts := strings.Split(s, ",")
	name, version, hasVersion := strings.Cut(parts[0], ":")
	if !ValidName(name) {
		return Request{}, fmt.Errorf("appc image %q: %q is not an image name (lowercase letters, digits and -._~/): %w", ref, name, errdefs.ErrInvalidArgument)
	}
	r := Request{Name: name, Labels: map[string]string{}}
	if hasVersion {
		if version == "" {
			return Request{}, fmt.Errorf("appc image %q: empty version: %w", ref, errdefs.ErrInvalidArgument)
		}
		r.Labels[LabelVersion] = version
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !acIdentifier.MatchString(k) || k == "name" {
			return Request{}, fmt.Errorf("appc image %q: %q is not LABEL=VALUE: %w", ref, p, errdefs.ErrInvalidArgument)
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			return Request{}, fmt.Errorf("appc image %q: label %s: %v: %w", ref, k, err, errdefs.ErrInvalidArgument)
		}
		if old, dup := r.Labels[k]; dup && old != uv {
			return Request{}, fmt.Errorf("appc image %q: label %s given twice: %w", ref, k, errdefs.ErrInvalidArgument)
		}
		r.Labels[k] = uv
	}
	return r, nil
}

// FormatReference is the inverse of ParseReference for a name and labels:
// NAME[,LABEL=VALUE...] with the labels sorted (store.AppcReference, the
// form image messages are turned into).
func FormatReference(name string, labels map[string]string) string {
	return store.AppcReference("", name, labels)
}

// String is the request in reference form.
func (r Request) String() string {
	if r.ID != "" {
		return r.ID
	}
	return FormatReference(r.Name, r.Labels)
}

// withPlatform returns r with the os and arch labels set to the host's when
// it does not give them: an image is looked up and discovered for the
// platform it runs on.
func (r Request) withPlatform() Request {
	labels := make(map[string]string, len(r.Labels)+2)
	for k, v := range r.Labels {
		labels[k] = v
	}
	if _, ok := labels[LabelOS]; !ok {
		labels[LabelOS] = runtime.GOOS
	}
	if _, ok := labels[LabelArch]; !ok {
		labels[LabelArch] = HostArch()
	}
	r.Labels = labels
	return r
}

// HostArch is the host's architecture in appc's names (types.ValidOSArch):
// Go's names except 386 (i386), arm64 (aarch64) and arm (armv7l).
func HostArch() string { return appcArch(runtime.GOARCH) }

func appcArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm64":
		return "aarch64"
	case "arm":
		return "armv7l"
	}
	return goarch
}

// matches reports whether an image manifest satisfies the request's
// labels (appc's dependency matching): every label asked for is in the
// manifest with the same value, except that an image without an os or arch
// label is OS- or architecture-independent and matches any.
func (r Request) matches(m Manifest) bool {
	if m.Name != r.Name {
		return false
	}
	for k, want := range r.Labels {
		got, ok := m.Labels.Get(k)
		if !ok && (k == LabelOS || k == LabelArch) {
			continue
		}
		if !ok || got != want {
			return false
		}
	}
	return true
}
