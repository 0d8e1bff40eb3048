package docker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// Reference prefixes Get understands besides plain names.
const (
	prefixArchive = "docker-archive:"
	prefixOCI     = "oci:"
	prefixDocker  = "docker://"
	sourceBuiltin = "builtin"
)

// requestKind says where an image comes from.
type requestKind int

const (
	kindName requestKind = iota
	kindArchive
	kindOCI
	kindBuiltin
)

// request is a parsed Get reference.
type request struct {
	kind requestKind
	// path is the archive or layout path (absolute).
	path string
	// tag selects a manifest of an OCI layout.
	tag string
	// want selects an image of an archive, or is the name asked for.
	want *named
	// source is the canonical source string stored with the image.
	source string
	// reference is the canonical reference (names and the builtin image).
	reference string
	// typed is a name as the caller wrote it.
	typed string
}

// key identifies the request for coalescing.
func (r request) key() string {
	if r.kind == kindName {
		return "name:" + r.reference
	}
	return r.source
}

// parseRequest parses a Get reference (see the package doc).
func (s *Store) parseRequest(ref string) (request, error) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		return request{}, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	case strings.HasPrefix(ref, prefixArchive):
		return parseArchiveRequest(strings.TrimPrefix(ref, prefixArchive))
	case strings.HasPrefix(ref, prefixOCI):
		return parseOCIRequest(strings.TrimPrefix(ref, prefixOCI))
	case s.isBuiltin(ref):
		return request{kind: kindBuiltin, source: sourceBuiltin, reference: s.builtinRef()}, nil
	}
	n, err := parseNamed(strings.TrimPrefix(ref, prefixDocker))
	if err != nil {
		return request{}, err
	}
	return request{kind: kindName, want: &n, reference: n.String(), typed: ref}, nil
}

// isBuiltin reports whether ref names the built-in image.
func (s *Store) isBuiltin(ref string) bool {
	if s.o.Builtin == nil || s.o.BuiltinReference == "" {
		return false
	}
	return ref == s.o.BuiltinReference || normalize(ref) == normalize(s.o.BuiltinReference)
}

func (s *Store) builtinRef() string { return normalize(s.o.BuiltinReference) }

// parseArchiveRequest parses PATH[:REF] of docker-archive:PATH[:REF]. The
// path is the shortest prefix that is an existing file, so paths may
// contain colons; REF picks an image of a multi-image archive.
func parseArchiveRequest(rest string) (request, error) {
	if rest == "" {
		return request{}, fmt.Errorf("docker-archive: needs a path: %w", errdefs.ErrInvalidArgument)
	}
	p, ref := rest, ""
	if !isFile(rest) {
		found := false
		for i := 0; i < len(rest) && !found; i++ {
			if rest[i] == ':' && isFile(rest[:i]) {
				p, ref, found = rest[:i], rest[i+1:], true
			}
		}
		if !found {
			return request{}, missing(rest)
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return request{}, fmt.Errorf("docker-archive %s: %w", p, err)
	}
	r := request{kind: kindArchive, path: abs, source: prefixArchive + abs}
	if ref != "" {
		n, err := parseNamed(ref)
		if err != nil {
			return request{}, err
		}
		r.want = &n
		r.source += ":" + n.String()
	}
	return r, nil
}

// parseOCIRequest parses PATH[:TAG] of oci:PATH[:TAG]: the whole string when
// it is a directory, else split at the last colon.
func parseOCIRequest(rest string) (request, error) {
	if rest == "" {
		return request{}, fmt.Errorf("oci: needs a path: %w", errdefs.ErrInvalidArgument)
	}
	p, tag := rest, ""
	if !isDir(rest) {
		i := strings.LastIndexByte(rest, ':')
		if i < 0 || strings.ContainsRune(rest[i+1:], '/') || !isDir(rest[:i]) {
			return request{}, missing(rest)
		}
		p, tag = rest[:i], rest[i+1:]
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return request{}, fmt.Errorf("oci %s: %w", p, err)
	}
	r := request{kind: kindOCI, path: abs, tag: tag, source: prefixOCI + abs}
	if tag != "" {
		r.source += ":" + tag
	}
	return r, nil
}

// missing is the error for a source path that does not exist.
func missing(p string) error {
	return fmt.Errorf("image source %s does not exist: %w", p, errdefs.ErrNotFound)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// tarballCandidates are the files of TarballDir that may hold the image n
// asked for as typed, in order:
//
//  1. <typed>.tar, the reference as the user wrote it (Mesos's naming:
//     "busybox.tar" for busybox, "busybox:1.36.tar" for busybox:1.36);
//  2. <familiar>.tar with the tag ("busybox:latest.tar");
//  3. <canonical>.tar ("docker.io/library/busybox:latest.tar").
//
// Slashes in a reference are directories under TarballDir
// ("quay.io/coreos/etcd:v3.tar"). Names that would leave TarballDir are
// dropped.
func tarballCandidates(dir, typed string, n named) []string {
	typed = strings.TrimPrefix(typed, prefixDocker)
	var out []string
	seen := map[string]bool{}
	for _, name := range []string{typed, n.familiar(), n.String()} {
		rel := filepath.FromSlash(name + ".tar")
		if seen[rel] || !filepath.IsLocal(rel) {
			continue
		}
		seen[rel] = true
		out = append(out, filepath.Join(dir, rel))
	}
	return out
}
