package aufs

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// paths are where one rootfs's scratch space lives, all derived from
// backendDir and the rootfs's base name (its id), so that Destroy finds
// them with no state besides the paths themselves.
type paths struct {
	// rootfs is the mount point, <backendDir>/rootfses/<id>.
	rootfs string
	// id is filepath.Base(rootfs).
	id string
	// scratch is <backendDir>/scratch/<id>.
	scratch string
	// rw is <scratch>/workdir, the writable top branch (Mesos's name).
	rw string
	// links is <backendDir>/links/<id>, holding the short symlinks
	// 0..N-1 to the layers when the option string needs them.
	links string
}

// pathsFor returns the scratch paths of rootfs (clean, absolute) in
// backendDir (clean, absolute).
func pathsFor(rootfs, backendDir string) paths {
	id := filepath.Base(rootfs)
	scratch := filepath.Join(backendDir, "scratch", id)
	return paths{
		rootfs:  rootfs,
		id:      id,
		scratch: scratch,
		rw:      filepath.Join(scratch, "workdir"),
		links:   filepath.Join(backendDir, "links", id),
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
		data := optionString(p.rw, topFirst(layers))
		if len(data) <= limit {
			return mountPlan{data: data}, nil
		}
	}
	names := make([]string, len(layers))
	for i := range layers {
		names[i] = strconv.Itoa(i)
	}
	rw, err := filepath.Rel(p.links, p.rw)
	if err != nil {
		return mountPlan{}, fmt.Errorf("rw branch %s: %w", p.rw, err)
	}
	if !plain(rw) {
		return mountPlan{}, fmt.Errorf("rootfs name %q: aufs mount options cannot carry ',', ':', '=' or '\\': %w",
			p.id, errdefs.ErrInvalidArgument)
	}
	data := optionString(rw, topFirst(names))
	if len(data) > limit {
		return mountPlan{}, fmt.Errorf("aufs options for %d layers are %d bytes even with short links, over the %d-byte page: %w",
			len(layers), len(data)+1, pageSize, errdefs.ErrInvalidArgument)
	}
	return mountPlan{data: data, links: slices.Clone(layers), cwd: p.links}, nil
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

// dedupe returns layers (bottom first) with every repeated path kept only
// at its topmost position: aufs refuses a branch given twice, and the
// store gives the same layer twice when an image repeats a diff (the 1 KiB
// empty tar of older Docker images often appears several times). The
// union is unchanged: in A-over-X-over-A every entry of the lower A is
// shadowed by the same entry of the upper A, and whatever X hides of the
// lower A the upper A shows again, so it is exactly A over X.
func dedupe(layers []string) []string {
	seen := make(map[string]bool, len(layers))
	out := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		c := filepath.Clean(layers[i])
		if !seen[c] {
			seen[c] = true
			out = append(out, layers[i])
		}
	}
	slices.Reverse(out)
	return out
}

// topFirst returns layers (bottom first) top first.
func topFirst(layers []string) []string {
	out := slices.Clone(layers)
	slices.Reverse(out)
	return out
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
