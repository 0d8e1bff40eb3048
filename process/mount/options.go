// Package mount turns mount(8)-style option lists into mount(2) flags and
// data, and mounts onto targets resolved inside a root without following
// symlinks. It is plain synchronous Go used by the container's init.
package mount

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// Options are mount(2) arguments parsed from mount(8) options.
type Options struct {
	// Flags are the MS_* flags for the first mount(2).
	Flags uintptr
	// Propagation is MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE (with
	// MS_REC when "r" prefixed), applied by a second mount(2), or 0.
	Propagation uintptr
	// Data is the filesystem-specific option string (mode=755,size=64k).
	Data string
	// Bind is set for bind and rbind.
	Bind bool
	// Recursive is set for rbind.
	Recursive bool
	// ReadOnly asks for a read-only mount; a bind mount needs a remount for it.
	ReadOnly bool
}

// flagOptions are the options that set or clear an MS_* flag.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"defaults": {true, 0},
}

// propagationOptions are the propagation types.
var propagationOptions = map[string]uintptr{
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// ParseOptions parses mount(8) options. Options it does not know as flags
// are passed to the filesystem as data; an option with a NUL or a comma
// inside is invalid.
func ParseOptions(opts []string) (Options, error) {
	var o Options
	var data []string
	for _, opt := range opts {
		if opt == "" || strings.ContainsAny(opt, ",\x00") {
			return Options{}, fmt.Errorf("mount option %q: %w", opt, errdefs.ErrInvalidArgument)
		}
		switch {
		case opt == "bind":
			o.Bind = true
		case opt == "rbind":
			o.Bind, o.Recursive = true, true
		case propagationOptions[opt] != 0:
			o.Propagation = propagationOptions[opt]
		default:
			f, ok := flagOptions[opt]
			switch {
			case !ok:
				data = append(data, opt)
			case f.clear:
				o.Flags &^= f.flag
			default:
				o.Flags |= f.flag
			}
		}
	}
	o.ReadOnly = o.Flags&unix.MS_RDONLY != 0
	if o.Bind {
		o.Flags |= unix.MS_BIND
		if o.Recursive {
			o.Flags |= unix.MS_REC
		}
	}
	o.Data = strings.Join(data, ",")
	return o, nil
}
