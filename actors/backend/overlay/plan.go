package overlay

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berthrt/berth/actors/backend/union"
	"github.com/berthrt/berth/process/errdefs"
)

// MaxLayers is the most lower layers one overlay mount stacks: the
// kernel's OVL_MAX_STACK. Provision refuses more with ErrInvalidArgument
// before touching anything.
const MaxLayers = 500

// fixedOptions are set on every mount, after the directories, so that the
// rootfs behaves the same whatever the kernel's compile-time defaults:
//
//   - index=off: the inode index ties an upper dir to one exact set of
//     lower dirs and is only needed for NFS export and hard-link copy-up
//     consistency across remounts, neither of which a container rootfs
//     uses (and it is the default of most kernels anyway).
//   - metacopy=off: a chown or chmod in the container copies the whole
//     file up, so the upper dir holds complete files: it is self-contained,
//     disk/du measures the container's real usage, and overlay never
//     follows a metacopy or redirect xattr found in an image layer (the
//     extractor refuses trusted.overlay.* from archives as well).
//
// redirect_dir, xino and the rest keep the kernel's defaults; userxattr is
// not set because the layers carry trusted.overlay.opaque (we mount as
// root in the initial user namespace).
var fixedOptions = []option{{"index", "off"}, {"metacopy", "off"}}

// option is one key=value mount option.
type option struct{ key, value string }

// paths are where one rootfs's scratch space lives. All are derived from
// backendDir and the rootfs's base name (its id, a UUID in the
// provisioner's layout), as in Mesos, so that Destroy finds them with no
// state besides the paths themselves.
type paths struct {
	union.Dirs
	// upper is <scratch>/upperdir: the container's writes.
	upper string
	// work is <scratch>/workdir: overlay's staging dir for copy-up.
	work string
}

// pathsFor returns the scratch paths of rootfs (clean, absolute) in
// backendDir (clean, absolute).
func pathsFor(rootfs, backendDir string) paths {
	return extend(union.DirsFor(rootfs, backendDir))
}

// extend adds this backend's scratch paths to d.
func extend(d union.Dirs) paths {
	return paths{
		Dirs:  d,
		upper: filepath.Join(d.Scratch, "upperdir"),
		work:  filepath.Join(d.Scratch, "workdir"),
	}
}

// fsconfigPlan returns the fsconfig(FSCONFIG_SET_STRING) calls that
// configure the overlay for layers, in order: the source name shown in
// mountinfo, one "lowerdir+" per layer from the top down (each call
// appends one layer below the previous ones, so there is no option string
// and no length limit), the upper and work dirs, then fixedOptions.
// Paths are passed verbatim: "lowerdir+" takes one path and does not
// split on ':' or unescape.
func fsconfigPlan(layers []string, p paths) []option {
	opts := make([]option, 0, len(layers)+3+len(fixedOptions))
	opts = append(opts, option{"source", "overlay"})
	for _, l := range union.TopFirst(layers) {
		opts = append(opts, option{"lowerdir+", l})
	}
	opts = append(opts, option{"upperdir", p.upper}, option{"workdir", p.work})
	return append(opts, fixedOptions...)
}

// legacyPlan is how to mount with mount(2), whose option string the kernel
// copies into one page: the string, and when the layers' own paths do not
// fit, the symlinks to create and the directory the mount call must
// resolve relative names from.
type legacyPlan struct {
	// data is the mount(2) option string (without the trailing NUL).
	data string
	// links, when set, are the targets of the symlinks <paths.links>/<i>:
	// links[i] is layer i, bottom first, as in Mesos. nil when the layers
	// are named directly.
	links []string
	// cwd, when set, is the directory the relative names in data are
	// resolved from (the mount call runs on a thread whose working
	// directory it is); "" when data holds absolute paths only.
	cwd string
}

// planLegacy plans a mount(2) of layers for p within pageSize bytes (the
// option string and its NUL must fit in one page: the kernel cuts the
// rest, and the mount then fails with ENOENT on a truncated path or, worse,
// stacks fewer layers).
//
// First choice: the layers' own absolute paths, when they fit and hold
// none of the characters the option syntax gives a meaning to (',' ends an
// option, ':' separates lower dirs, '\' escapes). Otherwise, as Mesos does
// (MESOS-6000), short symlinks <links>/0..N-1 to the layers; unlike Mesos,
// whose links in a mkdtemp directory are still ~16 bytes each, the names
// are made relative to the links directory ("0:1:...:127", at most 4 bytes
// a layer; upper and work relative too, "../../scratch/<id>/upperdir"), so
// that even MaxLayers layers fit in a page whatever the length of
// backendDir. The caller resolves those names with a thread-private
// working directory (see inDir).
func planLegacy(layers []string, p paths, pageSize int) (legacyPlan, error) {
	if len(layers) > MaxLayers {
		return legacyPlan{}, fmt.Errorf("%d layers: overlayfs stacks at most %d: %w", len(layers), MaxLayers, errdefs.ErrInvalidArgument)
	}
	limit := pageSize - 1
	if plainAll(layers) && plain(p.upper) && plain(p.work) {
		data := optionString(union.TopFirst(layers), p.upper, p.work)
		if len(data) <= limit {
			return legacyPlan{data: data}, nil
		}
	}
	names := make([]string, len(layers))
	for i := range layers {
		names[i] = strconv.Itoa(i)
	}
	upper, err := filepath.Rel(p.Links, p.upper)
	if err != nil {
		return legacyPlan{}, fmt.Errorf("upperdir %s: %w", p.upper, err)
	}
	work, err := filepath.Rel(p.Links, p.work)
	if err != nil {
		return legacyPlan{}, fmt.Errorf("workdir %s: %w", p.work, err)
	}
	if !plain(upper) || !plain(work) {
		return legacyPlan{}, fmt.Errorf("rootfs name %q: overlay mount options cannot carry ',', ':' or '\\': %w",
			p.ID, errdefs.ErrInvalidArgument)
	}
	data := optionString(union.TopFirst(names), upper, work)
	if len(data) > limit {
		return legacyPlan{}, fmt.Errorf("overlay options for %d layers are %d bytes even with short links, over the %d-byte page: %w",
			len(layers), len(data)+1, pageSize, errdefs.ErrInvalidArgument)
	}
	return legacyPlan{data: data, links: slices.Clone(layers), cwd: p.Links}, nil
}

// optionString returns the overlay option string for lower dirs (top
// first), upper and work, followed by fixedOptions.
func optionString(lower []string, upper, work string) string {
	var b strings.Builder
	b.WriteString("lowerdir=")
	b.WriteString(strings.Join(lower, ":"))
	b.WriteString(",upperdir=")
	b.WriteString(upper)
	b.WriteString(",workdir=")
	b.WriteString(work)
	for _, o := range fixedOptions {
		b.WriteString("," + o.key + "=" + o.value)
	}
	return b.String()
}

// plain reports whether s can appear in an overlay option string as is.
func plain(s string) bool { return !strings.ContainsAny(s, ",:\\\x00") }

func plainAll(ss []string) bool {
	for _, s := range ss {
		if !plain(s) {
			return false
		}
	}
	return true
}
