package appc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/process/errdefs"
)

// imageConfig turns the manifest's app into the runtime configuration the
// runtime isolator applies (ADR 0010): exec is the entrypoint, environment
// the env, workingDirectory the working directory, and user and group the
// user as "USER:GROUP". A user or group that is an absolute path is the
// owner or group of that file in the image (appc spec); it is looked up in
// layers (bottom first; the topmost holding the path wins) and given as a
// number. Labels are the manifest's labels; os and arch come from them.
func imageConfig(m Manifest, layers []string) (store.ImageConfig, error) {
	c := store.ImageConfig{Labels: m.Labels.Map()}
	c.OS, _ = m.Labels.Get(LabelOS)
	c.Architecture, _ = m.Labels.Get(LabelArch)
	if m.App == nil {
		return c, nil
	}
	a := m.App
	c.Entrypoint = append([]string{}, a.Exec...)
	for _, e := range a.Environment {
		c.Env = append(c.Env, e.Name+"="+e.Value)
	}
	c.WorkingDir = a.WorkingDirectory
	user, err := ownerSpec(a.User, layers, true)
	if err != nil {
		return c, fmt.Errorf("appc image %s: app.user: %w", m.Name, err)
	}
	group, err := ownerSpec(a.Group, layers, false)
	if err != nil {
		return c, fmt.Errorf("appc image %s: app.group: %w", m.Name, err)
	}
	c.User = user + ":" + group
	return c, nil
}

// ownerSpec returns v, or for an absolute path the uid (or gid) of the file
// at that path in the stacked layers, as a number. The lookup goes through
// os.Root, which keeps every step of the path, symlinks included, inside
// the layer.
func ownerSpec(v string, layers []string, uid bool) (string, error) {
	if !strings.HasPrefix(v, "/") {
		return v, nil
	}
	rel := strings.TrimLeft(v, "/")
	for i := len(layers) - 1; i >= 0; i-- {
		st, err := statIn(layers[i], rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", v, err)
		}
		if uid {
			return strconv.FormatUint(uint64(st.Uid), 10), nil
		}
		return strconv.FormatUint(uint64(st.Gid), 10), nil
	}
	return "", fmt.Errorf("%s does not exist in the image: %w", v, errdefs.ErrInvalidArgument)
}

// statIn stats rel inside root without leaving it.
func statIn(root, rel string) (*syscall.Stat_t, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	fi, err := r.Stat(rel)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("no owner for %s: %w", rel, errdefs.ErrInternal)
	}
	return st, nil
}

// created is the manifest's "created" annotation, or the zero time.
func created(m Manifest) time.Time {
	v, ok := m.Annotations.Get("created")
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
