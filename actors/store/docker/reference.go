package docker

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// Docker Hub's names, as Docker normalises them.
const (
	defaultDomain = "docker.io"
	legacyDomain  = "index.docker.io"
	officialRepo  = "library/"
	defaultTag    = "latest"
	maxNameLength = 255
)

// named is a parsed Docker reference: [domain/]path[:tag][@digest].
type named struct {
	domain, path, tag, digest string
}

// referenceGrammar holds the compiled parts of Docker's reference grammar.
type referenceGrammar struct {
	domain, component, tag, digest, hex64 *regexp.Regexp
}

func grammar() referenceGrammar {
	return referenceGrammar{
		// A host name or a bracketed IPv6 address, with an optional port.
		domain:    regexp.MustCompile(`^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`),
		component: regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`),
		tag:       regexp.MustCompile(`^[\w][\w.-]{0,127}$`),
		digest:    regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$`),
		hex64:     regexp.MustCompile(`^[a-f0-9]{64}$`),
	}
}

// parseNamed parses and normalises a Docker reference the way Docker does:
// "busybox" is docker.io/library/busybox:latest, "quay.io/a/b" keeps its
// registry; a first component is a registry when it has a dot or a colon, is
// "localhost", or has upper-case letters. A reference without tag and
// digest gets the tag "latest". Bad references are ErrInvalidArgument.
func parseNamed(s string) (named, error) {
	bad := func(why string) (named, error) {
		return named{}, fmt.Errorf("image reference %q: %s: %w", s, why, errdefs.ErrInvalidArgument)
	}
	g := grammar()
	var n named
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest, n.digest = rest[:i], rest[i+1:]
		if !g.digest.MatchString(n.digest) {
			return bad("malformed digest")
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		rest, n.tag = rest[:i], rest[i+1:]
		if !g.tag.MatchString(n.tag) {
			return bad("malformed tag")
		}
	}
	if rest == "" {
		return bad("empty name")
	}
	// Docker refuses a name that looks like an image id.
	if g.hex64.MatchString(rest) {
		return bad("a 64-character hexadecimal name is an image id, not a repository")
	}
	n.domain, n.path = splitDomain(rest)
	if !g.domain.MatchString(n.domain) {
		return bad("malformed registry")
	}
	for _, c := range strings.Split(n.path, "/") {
		if !g.component.MatchString(c) {
			return bad(fmt.Sprintf("malformed path component %q (lower-case letters, digits and separators)", c))
		}
	}
	if len(n.domain)+1+len(n.path) > maxNameLength {
		return bad("name longer than 255 characters")
	}
	if n.tag == "" && n.digest == "" {
		n.tag = defaultTag
	}
	return n, nil
}

// splitDomain splits a name into registry and path, Docker's way.
func splitDomain(name string) (domain, path string) {
	i := strings.IndexByte(name, '/')
	if i < 0 || (!strings.ContainsAny(name[:i], ".:") && name[:i] != "localhost" && strings.ToLower(name[:i]) == name[:i]) {
		domain, path = defaultDomain, name
	} else {
		domain, path = name[:i], name[i+1:]
	}
	if domain == legacyDomain {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.ContainsRune(path, '/') {
		path = officialRepo + path
	}
	return domain, path
}

// repository is domain/path.
func (n named) repository() string { return n.domain + "/" + n.path }

// String is the canonical form: domain/path[:tag][@digest].
func (n named) String() string {
	s := n.repository()
	if n.tag != "" {
		s += ":" + n.tag
	}
	if n.digest != "" {
		s += "@" + n.digest
	}
	return s
}

// familiar is the short form Docker prints: without docker.io/, and
// without library/ when what follows has no slash (docker.io/library/a/b
// stays library/a/b: a/b would be docker.io/a/b).
func (n named) familiar() string {
	s := n.String()
	if n.domain == defaultDomain {
		s = strings.TrimPrefix(s, defaultDomain+"/")
		if rest, ok := strings.CutPrefix(n.path, officialRepo); ok && !strings.Contains(rest, "/") {
			s = strings.TrimPrefix(s, officialRepo)
		}
	}
	return s
}

// normalize returns the canonical form of a reference, or the reference
// itself when it does not parse (source strings such as oci:PATH).
func normalize(ref string) string {
	if n, err := parseNamed(ref); err == nil {
		return n.String()
	}
	return ref
}
