package appc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// maxManifestSize bounds the manifest read from an image.
const maxManifestSize = 1 << 20

// Label is a name/value pair of an image manifest (labels, annotations).
type Label struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Labels is a list of labels; names are unique.
type Labels []Label

// Get returns the value of the label name.
func (ls Labels) Get(name string) (string, bool) {
	for _, l := range ls {
		if l.Name == name {
			return l.Value, true
		}
	}
	return "", false
}

// Map returns the labels as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// App is the app section: how to run the image. Fields Berth does not use
// (eventHandlers, isolators, mountPoints, ports) are not decoded.
type App struct {
	Exec             []string `json:"exec"`
	User             string   `json:"user"`
	Group            string   `json:"group"`
	WorkingDirectory string   `json:"workingDirectory,omitempty"`
	Environment      Labels   `json:"environment,omitempty"`
}

// Dependency is an image placed below this one, named by imageName and
// labels, and pinned by imageID when given.
type Dependency struct {
	ImageName string `json:"imageName"`
	ImageID   string `json:"imageID,omitempty"`
	Labels    Labels `json:"labels,omitempty"`
	Size      uint64 `json:"size,omitempty"`
}

// Manifest is an ACI's image manifest (appc spec, "Image Manifest Schema").
type Manifest struct {
	ACKind        string       `json:"acKind"`
	ACVersion     string       `json:"acVersion"`
	Name          string       `json:"name"`
	Labels        Labels       `json:"labels,omitempty"`
	App           *App         `json:"app,omitempty"`
	Dependencies  []Dependency `json:"dependencies,omitempty"`
	PathWhitelist []string     `json:"pathWhitelist,omitempty"`
	Annotations   Labels       `json:"annotations,omitempty"`
}

// ManifestError is a manifest that breaks the appc schema. It is of class
// errdefs.ErrInvalidArgument.
type ManifestError struct {
	// Field is the JSON path of the offending field ("app.exec").
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *ManifestError) Error() string {
	if e.Field == "" {
		return "appc image manifest: " + e.Problem
	}
	return fmt.Sprintf("appc image manifest: %s: %s", e.Field, e.Problem)
}

// Unwrap gives the error class.
func (e *ManifestError) Unwrap() error { return errdefs.ErrInvalidArgument }

func bad(field, format string, args ...any) error {
	return &ManifestError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

var (
	// acIdentifier is the AC Identifier type (image names, label names).
	acIdentifier = regexp.MustCompile(`^[a-z0-9]+([-._~/][a-z0-9]+)*$`)
	// acName is the AC Name type (annotation names).
	acName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	// semver is the AC Version type (SemVer 2.0.0).
	semver = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	// envName is the spec's rule for environment variable names.
	envName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// imageID is the Image ID type: sha512 is the only algorithm.
	imageID = regexp.MustCompile(`^sha512-[0-9a-f]{128}$`)
)

// ValidID reports whether id is a full image id, "sha512-" and 128 hex
// digits (it is used as a directory name).
func ValidID(id string) bool { return imageID.MatchString(id) }

// ValidName reports whether name is an AC Identifier, the form of image
// names.
func ValidName(name string) bool { return acIdentifier.MatchString(name) }

// ParseManifest decodes and validates an image manifest. Every violation of
// the schema is a *ManifestError (class errdefs.ErrInvalidArgument).
// Unknown fields are ignored, as the spec's forward compatibility wants.
func ParseManifest(data []byte) (Manifest, error) {
	if len(data) > maxManifestSize {
		return Manifest{}, bad("", "%d bytes, more than %d", len(data), maxManifestSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Manifest{}, bad(ute.Field, "is a JSON %s, want %s", ute.Value, ute.Type)
		}
		return Manifest{}, bad("", "not JSON: %v", err)
	}
	if dec.More() {
		return Manifest{}, bad("", "trailing data after the JSON object")
	}
	return m, m.Validate()
}

// Validate checks the manifest against the appc schema.
func (m Manifest) Validate() error {
	if m.ACKind != "ImageManifest" {
		return bad("acKind", "%q, want \"ImageManifest\"", m.ACKind)
	}
	if !semver.MatchString(m.ACVersion) {
		return bad("acVersion", "%q is not a semantic version", m.ACVersion)
	}
	if !acIdentifier.MatchString(m.Name) {
		return bad("name", "%q is not an AC identifier (lowercase letters, digits and -._~/)", m.Name)
	}
	if err := validLabels("labels", m.Labels); err != nil {
		return err
	}
	if m.App != nil {
		if err := m.App.validate(); err != nil {
			return err
		}
	}
	for i, d := range m.Dependencies {
		field := fmt.Sprintf("dependencies[%d]", i)
		if !acIdentifier.MatchString(d.ImageName) {
			return bad(field+".imageName", "%q is not an AC identifier", d.ImageName)
		}
		if d.ImageID != "" && !imageID.MatchString(d.ImageID) {
			return bad(field+".imageID", "%q is not an image id (sha512- and 128 hex digits)", d.ImageID)
		}
		if err := validLabels(field+".labels", d.Labels); err != nil {
			return err
		}
	}
	for i, p := range m.PathWhitelist {
		if !path.IsAbs(p) {
			return bad(fmt.Sprintf("pathWhitelist[%d]", i), "%q is not an absolute path", p)
		}
	}
	seen := map[string]bool{}
	for i, a := range m.Annotations {
		field := fmt.Sprintf("annotations[%d]", i)
		if !acName.MatchString(a.Name) {
			return bad(field+".name", "%q is not an AC name", a.Name)
		}
		if seen[a.Name] {
			return bad(field+".name", "%q given twice", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

func validLabels(field string, ls Labels) error {
	seen := map[string]bool{}
	for i, l := range ls {
		f := fmt.Sprintf("%s[%d].name", field, i)
		if !acIdentifier.MatchString(l.Name) {
			return bad(f, "%q is not an AC identifier", l.Name)
		}
		if l.Name == "name" {
			return bad(f, "a label may not be called \"name\"")
		}
		if seen[l.Name] {
			return bad(f, "%q given twice", l.Name)
		}
		seen[l.Name] = true
	}
	return nil
}

func (a *App) validate() error {
	if len(a.Exec) == 0 {
		return bad("app.exec", "empty; an app needs a command")
	}
	if !path.IsAbs(a.Exec[0]) {
		return bad("app.exec[0]", "%q is not an absolute path", a.Exec[0])
	}
	if a.User == "" {
		return bad("app.user", "missing (a name, a uid or an absolute path)")
	}
	if a.Group == "" {
		return bad("app.group", "missing (a name, a gid or an absolute path)")
	}
	for _, s := range []struct{ field, v string }{{"app.user", a.User}, {"app.group", a.Group}} {
		if strings.ContainsAny(s.v, ":\x00") {
			return bad(s.field, "%q holds ':' or NUL", s.v)
		}
	}
	if a.WorkingDirectory != "" && !path.IsAbs(a.WorkingDirectory) {
		return bad("app.workingDirectory", "%q is not an absolute path", a.WorkingDirectory)
	}
	seen := map[string]bool{}
	for i, e := range a.Environment {
		f := fmt.Sprintf("app.environment[%d].name", i)
		if !envName.MatchString(e.Name) {
			return bad(f, "%q: names are letters, digits and '_'", e.Name)
		}
		if seen[e.Name] {
			return bad(f, "%q given twice", e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}
