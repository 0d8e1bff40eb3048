package archive

import (
	"fmt"
	"path"
	"strings"
)

// maxNameLen bounds entry names and link targets (PATH_MAX).
const maxNameLen = 4096

// whiteoutMetaPrefix starts AUFS's own metadata (".wh..wh.plnk", ".wh..wh.aufs").
const whiteoutMetaPrefix = WhiteoutPrefix + WhiteoutPrefix

// cleanName normalises a tar name as if it were rooted at "/": leading
// slashes go and the rest is cleaned, so "/etc/x" and "./etc//x" are
// "etc/x" and the root is ".". Names that still climb out ("../x",
// "a/../../x"), contain NUL or are too long are rejected.
func cleanName(name string) (string, error) {
	if len(name) > maxNameLen {
		return "", fmt.Errorf("name is %d bytes long, the limit is %d", len(name), maxNameLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name contains a NUL byte")
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("name escapes the layer root")
	}
	return rel, nil
}

// splitRel splits a cleaned name into its parent directory and base name;
// the parent of a top-level name is ".". The root "." splits into (".", ".").
func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return ".", rel
	}
	return rel[:i], rel[i+1:]
}

// whiteoutKind says what a base name means as a whiteout.
type whiteoutKind int

const (
	notWhiteout   whiteoutKind = iota
	whiteoutEntry              // ".wh.NAME": deletes NAME
	whiteoutOpq                // ".wh..wh..opq": the directory is opaque
	whiteoutMeta               // ".wh..wh.*": AUFS metadata
)

// classifyWhiteout returns what base means and, for ".wh.NAME", NAME.
// Whiteouts that name no sibling (".wh.", ".wh..", ".wh...") are errors.
func classifyWhiteout(base string) (whiteoutKind, string, error) {
	if !strings.HasPrefix(base, WhiteoutPrefix) {
		return notWhiteout, "", nil
	}
	if base == WhiteoutOpaque {
		return whiteoutOpq, "", nil
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return whiteoutMeta, "", nil
	}
	target := base[len(WhiteoutPrefix):]
	switch target {
	case "", ".", "..":
		return notWhiteout, "", fmt.Errorf("whiteout %q names no sibling entry", base)
	}
	return whiteoutEntry, target, nil
}

// checkParents looks at the directories of a cleaned name. A whiteout used
// as a directory (".wh.x/y") is an error; meta reports a name under AUFS
// metadata (".wh..wh.plnk/y").
func checkParents(dir string) (meta bool, err error) {
	if !strings.Contains(dir, WhiteoutPrefix) {
		return false, nil
	}
	for rest := dir; rest != ""; {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch {
		case strings.HasPrefix(comp, whiteoutMetaPrefix):
			meta = true
		case strings.HasPrefix(comp, WhiteoutPrefix):
			return false, fmt.Errorf("whiteout %q is used as a directory", comp)
		}
	}
	return meta, nil
}

// quoteName quotes a name for an error message, shortened when huge.
func quoteName(name string) string {
	const max = 200
	if len(name) > max {
		return fmt.Sprintf("%q...(%d bytes)", name[:max], len(name))
	}
	return fmt.Sprintf("%q", name)
}
