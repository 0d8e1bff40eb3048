package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/aufs"
	"github.com/berthrt/berth/actors/backend/bind"
	"github.com/berthrt/berth/actors/backend/copyfs"
	"github.com/berthrt/berth/actors/backend/overlay"
	"github.com/berthrt/berth/process/errdefs"
)

// backendPreference is the order in which the default backend is picked
// when --image_provisioner_backend is unset, as Mesos does: overlay, then
// aufs, then copy. bind is never picked by default (single-layer images only).
var backendPreference = []string{"overlay", "aufs", "copy"}

// knownBackends are every backend Berth has, by name.
var knownBackends = []string{"copy", "bind", "overlay", "aufs"}

// backendSet is what this host can run.
type backendSet struct {
	available map[string]backend.Backend
	// unavailable says why a known backend cannot run here.
	unavailable map[string]string
	// chosen is the default backend and why it was chosen.
	chosen, why string
}

// buildBackends probes every backend on this host and picks the default:
// the one asked for (which must work here, or the agent does not start),
// else the first of backendPreference that works.
func buildBackends(o Options, logger *zap.Logger) (backendSet, error) {
	set := backendSet{available: map[string]backend.Backend{}, unavailable: map[string]string{}}
	for _, name := range knownBackends {
		b, err := probeBackend(name, o)
		if err != nil {
			set.unavailable[name] = err.Error()
			continue
		}
		set.available[name] = b
	}
	if o.Backend != "" {
		if _, ok := set.available[o.Backend]; ok {
			set.chosen, set.why = o.Backend, "asked for"
		} else if why, known := set.unavailable[o.Backend]; known {
			return set, fmt.Errorf("rootfs backend %q cannot run on this host: %s: %w", o.Backend, why, errdefs.ErrFailedPrecondition)
		} else {
			return set, fmt.Errorf("unknown rootfs backend %q (Berth has %s): %w", o.Backend, strings.Join(knownBackends, ", "), errdefs.ErrInvalidArgument)
		}
	} else {
		for _, name := range backendPreference {
			if _, ok := set.available[name]; ok {
				set.chosen, set.why = name, "the best this kernel and filesystem support"
				break
			}
		}
	}
	fields := []zap.Field{zap.String("backend", set.chosen), zap.String("why", set.why)}
	if ov, ok := set.available["overlay"].(*overlay.Backend); ok {
		fields = append(fields, zap.Stringer("overlay_mount_api", ov.API()))
	}
	for name, why := range set.unavailable {
		fields = append(fields, zap.String("unavailable_"+name, why))
	}
	logger.Info("rootfs backend", fields...)
	return set, nil
}

// probeBackend builds a backend after checking that this host can run it.
func probeBackend(name string, o Options) (backend.Backend, error) {
	switch name {
	case "copy":
		return copyfs.New(), nil
	case "bind":
		return bind.New(), nil
	case "overlay":
		if err := overlaySupported(o.WorkDir, o.DockerStoreDir); err != nil {
			return nil, err
		}
		return overlay.New(), nil
	case "aufs":
		if err := aufs.Check(); err != nil {
			return nil, err
		}
		return aufs.New(), nil
	}
	return nil, fmt.Errorf("unknown backend %q: %w", name, errdefs.ErrInvalidArgument)
}

// overlaySupported checks what the overlay backend needs: the kernel's
// overlay filesystem; work and store directories that are not themselves
// on overlayfs (an upper or lower dir on overlayfs is not supported) and
// whose filesystem reports file types (d_type) and takes trusted.* xattrs
// (the layers' opaque directories).
func overlaySupported(workDir, storeDir string) error {
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Errorf("read /proc/filesystems: %w", err)
	}
	if !hasFilesystem(fss, "overlay") {
		return errors.New("the kernel has no overlay filesystem (not in /proc/filesystems; try modprobe overlay)")
	}
	for _, dir := range []string{workDir, storeDir} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", dir, err)
		}
		if st.Type == unix.OVERLAYFS_SUPER_MAGIC {
			return fmt.Errorf("%s is on overlayfs, which cannot hold overlay layers or upper dirs", dir)
		}
	}
	probe, err := os.MkdirTemp(storeDir, ".overlay-probe-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(probe) }()
	if err := unix.Setxattr(probe, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("%s does not take trusted.* xattrs (%w): overlay cannot mark opaque directories", storeDir, err)
	}
	if err := os.WriteFile(filepath.Join(probe, "f"), nil, 0o600); err != nil {
		return err
	}
	if !dtypeSupported(probe) {
		return fmt.Errorf("%s does not report file types (d_type), which overlayfs needs", storeDir)
	}
	return nil
}

// dtypeSupported reads dir with getdents and checks that its entries carry
// a file type (xfs formatted with ftype=0 reports DT_UNKNOWN).
func dtypeSupported(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil || n <= 0 {
		return false
	}
	buf = buf[:n]
	for len(buf) > 0 {
		// struct linux_dirent64: ino(8) off(8) reclen(2) type(1) name...
		reclen := int(buf[16]) | int(buf[17])<<8
		if reclen <= 0 || reclen > len(buf) {
			return false
		}
		typ := buf[18]
		name := buf[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if string(name) == "f" {
			return typ == unix.DT_REG
		}
		buf = buf[reclen:]
	}
	return false
}

func hasFilesystem(procFilesystems []byte, name string) bool {
	for _, line := range strings.Split(string(procFilesystems), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}
