package aufs

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berthrt/berth/actors/backend/union"
	"github.com/berthrt/berth/process/errdefs"
)

// paths are where one rootfs's scratch space lives, all derived from
// backendDir and the rootfs's base name (its id), so that Destroy finds
// them with no state besides the paths themselves.
type paths struct {
	union.Dirs
	// rw is <scratch>/workdir, the writable top branch (Mesos's name).
	rw string
}

// pathsFor returns the scratch paths of rootfs (clean, absolute) in
// backendDir (clean, absolute).
func pathsFor(rootfs, backendDir string) paths {
	return extend(union.DirsFor(rootfs, backendDir))
}

// extend adds this backend's scratch paths to d.
func extend(d union.Dirs) paths {
	return paths{
		Dirs: d,
		rw:   filepath.Join(d.Scratch, "workdir"),
	}
}

// mountPlan is how to mount the aufs of one rootfs with mount(2), whose
// option string the kernel copies into one page: the string, and when the
// layers' own paths do not fit, the symlinks to create and the directory
// the mount call must resolve relative names from.
type mountPlan struct {
	// data is the mount(2) option string (without the trailing NUL).
	data string
	// links, when set, are the targets of the symlinks <paths.links>/<i>:
	// links[i] is layer i, bottom first. nil when the layers are named
	// directly.
	links []string
	// cwd, when set, is the directory the relative names in data are
	// resolved from; "" when data holds absolute paths only.
	cwd string
}

// planMount plans the aufs mount of layers (bottom first) for p within
// pageSize bytes (string and NUL).
//
// The branches are "br:<rw>=rw:<top>=ro+wh:...:<bottom>=ro+wh": aufs
// looks a name up from the leftmost branch to the right, so the writable
// branch comes first and the layers follow from the top down; "ro+wh"
// makes a layer read-only and honours the whiteouts in it.
//
// First choice: the layers' own absolute paths, when they fit and hold
// none of the characters the option syntax gives a meaning to (',' ends an
// option, ':' separates branches, '=' introduces a branch's permission,
// '\' escapes). Otherwise short symlinks <links>/0..N-1 to the layers,
// named relative to the links directory ("br:../../scratch/<id>/workdir=rw:
// N-1=ro+wh:...:0=ro+wh"), at most 10 bytes a layer whatever the length of
// backendDir. The caller resolves those names with a thread-private
// working directory (inDir).
func planMount(layers []string, p paths, pageSize int) (mountPlan, error) {
	if len(layers) == 0 {
		return mountPlan{}, fmt.Errorf("no layers: %w", errdefs.ErrInvalidArgument)
	}
	limit := pageSize - 1
	if plainAll(layers) && plain(p.rw) {
		data := optionString(p.rw, union.TopFirst(layers))
		if len(data) <= limit {
			return mountPlan{data: data}, nil
		}
	}
	names := make([]string, len(layers))
	for i := range layers {
		names[i] = strconv.Itoa(i)
	}
	rw, err := filepath.Rel(p.Links, p.rw)
	if err != nil {
		return mountPlan{}, fmt.Errorf("rw branch %s: %w", p.rw, err)
	}
	if !plain(rw) {
		return mountPlan{}, fmt.Errorf("rootfs name %q: aufs mount options cannot carry ',', ':', '=' or '\\': %w",
			p.ID, errdefs.ErrInvalidArgument)
	}
	data := optionString(rw, union.TopFirst(names))
	if len(data) > limit {
		return mountPlan{}, fmt.Errorf("aufs options for %d layers are %d bytes even with short links, over the %d-byte page: %w",
			len(layers), len(data)+1, pageSize, errdefs.ErrInvalidArgument)
	}
	return mountPlan{data: data, links: slices.Clone(layers), cwd: p.Links}, nil
}

// optionString returns the aufs branch option for the writable branch rw
// and the read-only branches lower (top first).
func optionString(rw string, lower []string) string {
	var b strings.Builder
	b.WriteString("br:")
	b.WriteString(rw)
	b.WriteString("=rw")
	for _, l := range lower {
		b.WriteString(":")
		b.WriteString(l)
		b.WriteString("=ro+wh")
	}
	return b.String()
}

// plain reports whether s can appear in an aufs branch list as is.
func plain(s string) bool { return !strings.ContainsAny(s, ",:=\\\x00") }

func plainAll(ss []string) bool {
	for _, s := range ss {
		if !plain(s) {
			return false
		}
	}
	return true
}
