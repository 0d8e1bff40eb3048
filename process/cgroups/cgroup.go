package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// DefaultRoot is the cgroup below each hierarchy's root that holds the
// containers' cgroups (Mesos: --cgroups_root=mesos).
const DefaultRoot = "berth"

// Manager makes the cgroups of containers for a set of controllers below
// one root. Two Managers of one root (cpu, memory) share the v2 cgroup of a
// container; on v1 each has its own hierarchies.
type Manager struct {
	layout Layout
	root   string
	// controllers are those whose limits the Manager writes.
	controllers []string
	// dirs are the hierarchies' mount points joined with root: on v1 one per
	// distinct hierarchy of the controllers (and cpuacct for cpu), on v2 one.
	dirs []string
	// ctlDir maps a controller to its root dir.
	ctlDir map[string]string
}

// validName accepts one path component that is not "." or "..".
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("cgroup name %q: want one path component: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// NewManager checks that the host offers controllers and returns their
// Manager below root, a relative path of one or more components. The
// controllers may be none: a v2 Manager then only groups and kills
// processes. cpu on v1 also uses cpuacct for statistics when mounted.
func NewManager(l Layout, root string, controllers []string) (*Manager, error) {
	root = filepath.Clean(root)
	if root == "." || filepath.IsAbs(root) || root == ".." || strings.HasPrefix(root, "../") {
		return nil, fmt.Errorf("cgroups root %q: want a relative path below the hierarchies' roots: %w", root, errdefs.ErrInvalidArgument)
	}
	m := &Manager{layout: l, root: root, controllers: controllers, ctlDir: map[string]string{}}
	switch l.Version {
	case V2:
		if l.Unified == "" {
			return nil, fmt.Errorf("no cgroup2 hierarchy mounted: %w", errdefs.ErrFailedPrecondition)
		}
		for _, c := range controllers {
			if !slices.Contains(l.UnifiedControllers, c) {
				return nil, fmt.Errorf("the cgroup2 hierarchy at %s does not offer the %s controller (it has: %s): %w",
					l.Unified, c, strings.Join(l.UnifiedControllers, " "), errdefs.ErrFailedPrecondition)
			}
		}
		d := filepath.Join(l.Unified, root)
		m.dirs = []string{d}
		for _, c := range controllers {
			m.ctlDir[c] = d
		}
	default:
		want := slices.Clone(controllers)
		if slices.Contains(want, CPU) {
			if _, ok := l.V1[CPUAcct]; ok {
				want = append(want, CPUAcct)
			}
		}
		for _, c := range want {
			mp, ok := l.V1[c]
			if !ok {
				return nil, fmt.Errorf("no cgroup v1 hierarchy has the %s controller (see /proc/self/mountinfo): %w", c, errdefs.ErrFailedPrecondition)
			}
			d := filepath.Join(mp, root)
			m.ctlDir[c] = d
			if !slices.Contains(m.dirs, d) {
				m.dirs = append(m.dirs, d)
			}
		}
		if len(m.dirs) == 0 {
			return nil, fmt.Errorf("cgroups v1 without a controller: %w", errdefs.ErrInvalidArgument)
		}
	}
	return m, nil
}

// Version is the version the Manager drives.
func (m *Manager) Version() Version { return m.layout.Version }

// Dirs are the container cgroup paths of id, one per hierarchy.
func (m *Manager) Dirs(id string) []string {
	out := make([]string, len(m.dirs))
	for i, d := range m.dirs {
		out[i] = filepath.Join(d, id)
	}
	return out
}

// Features reports what the memory controller of id's cgroup accounts.
func (m *Manager) Features(id string) Features {
	d, ok := m.ctlDir[Memory]
	if !ok {
		return Features{}
	}
	file := "memory.memsw.limit_in_bytes"
	if m.layout.Version == V2 {
		file = "memory.swap.max"
	}
	_, err := os.Stat(filepath.Join(d, id, file))
	return Features{Swap: err == nil}
}

// Create makes id's cgroup in every hierarchy (an existing one is kept:
// Create is idempotent, and two Managers share the v2 cgroup). On v2 the
// controllers are first enabled for the children of the mount root and of
// the Manager's root.
func (m *Manager) Create(id string) error {
	if err := validName(id); err != nil {
		return err
	}
	for _, d := range m.dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return classify("create cgroup", d, err)
		}
	}
	if m.layout.Version == V2 && len(m.controllers) > 0 {
		// A cgroup's controllers are those its parent delegates through
		// cgroup.subtree_control: enable them from the mount root down
		// to our root (never in the container's own cgroup, which holds
		// processes: v2 forbids processes in inner cgroups).
		dir := m.layout.Unified
		for _, part := range strings.Split(m.root, "/") {
			if err := enableControllers(dir, m.controllers); err != nil {
				return err
			}
			dir = filepath.Join(dir, part)
		}
		if err := enableControllers(dir, m.controllers); err != nil {
			return err
		}
	}
	for _, d := range m.Dirs(id) {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return classify("create cgroup", d, err)
		}
	}
	return nil
}

// enableControllers adds the missing ones of want to dir's subtree_control.
func enableControllers(dir string, want []string) error {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return classify("read subtree_control", dir, err)
	}
	have := strings.Fields(string(b))
	var add []string
	for _, c := range want {
		if !slices.Contains(have, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " "))
}

// Attach moves pid (and its threads) into id's cgroup in every hierarchy.
func (m *Manager) Attach(id string, pid int) error {
	if err := validName(id); err != nil {
		return err
	}
	for _, d := range m.Dirs(id) {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Apply writes a plan (Plan's output) to id's cgroups; a write to a
// controller the Manager does not have is an error.
func (m *Manager) Apply(id string, plan []Write) error {
	if err := validName(id); err != nil {
		return err
	}
	for _, w := range plan {
		d, ok := m.ctlDir[w.Controller]
		if !ok {
			return fmt.Errorf("plan writes %s of controller %s, not managed here: %w", w.File, w.Controller, errdefs.ErrInvalidArgument)
		}
		if err := writeFile(filepath.Join(d, id, w.File), w.Value); err != nil {
			return err
		}
	}
	return nil
}

// SetLimits writes l as the plan for the Manager's controllers.
func (m *Manager) SetLimits(id string, l Limits) error {
	return m.Apply(id, Plan(m.layout.Version, m.controllers, l, m.Features(id)))
}

// Procs lists the pids in id's cgroups (each once).
func (m *Manager) Procs(id string) ([]int, error) {
	if err := validName(id); err != nil {
		return nil, err
	}
	var out []int
	for _, d := range m.Dirs(id) {
		pids, err := readProcs(d)
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func readProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, classify("read cgroup.procs", dir, err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Exists reports whether any of id's cgroups exists.
func (m *Manager) Exists(id string) bool {
	for _, d := range m.Dirs(id) {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}

// List returns the names of the container cgroups below the root, in any
// hierarchy of the Manager.
func (m *Manager) List() ([]string, error) {
	var out []string
	for _, d := range m.dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, classify("list cgroups", d, err)
		}
		for _, e := range ents {
			if e.IsDir() && !slices.Contains(out, e.Name()) {
				out = append(out, e.Name())
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Destroy kills every process of id's cgroups, waits for them to leave and
// removes the cgroups. A missing cgroup is not an error: Destroy is
// idempotent. It gives up when ctx ends.
func (m *Manager) Destroy(ctx context.Context, id string) error {
	if err := validName(id); err != nil {
		return err
	}
	for _, d := range m.Dirs(id) {
		if err := destroyDir(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// destroyDir empties one cgroup and removes it.
func destroyDir(ctx context.Context, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// cgroup.kill (v2, Linux 5.14) kills every process of the cgroup in the
	// kernel, racing no fork; without it, processes are signalled one by
	// one until none is left (a fork between the read and the kill is
	// caught by the next round).
	if err := writeFile(filepath.Join(dir, "cgroup.kill"), "1"); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	wait := 100 * time.Microsecond
	for {
		pids, err := readProcs(dir)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		// rmdir succeeds once no process is left; EBUSY means some are (or
		// an exited one is not yet released by the kernel).
		if len(pids) == 0 {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				return nil
			}
			if !errors.Is(err, unix.EBUSY) {
				return classify("remove cgroup", dir, err)
			}
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s: %d processes left: %w", dir, len(pids), errdefs.ErrDeadlineExceeded)
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Purge destroys every container cgroup below the root but those keep
// accepts (nil keeps none), and returns the names it destroyed.
func (m *Manager) Purge(ctx context.Context, keep func(name string) bool) ([]string, error) {
	names, err := m.List()
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, n := range names {
		if keep != nil && keep(n) {
			continue
		}
		if err := m.Destroy(ctx, n); err != nil {
			return gone, err
		}
		gone = append(gone, n)
	}
	return gone, nil
}

// RemoveRoot removes the Manager's root cgroups (and their empty parents
// up to the hierarchy roots) when no container cgroup is left in them.
func (m *Manager) RemoveRoot() error {
	for _, d := range m.dirs {
		mp := strings.TrimSuffix(d, "/"+m.root)
		for dir := d; dir != mp && dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			err := unix.Rmdir(dir)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				return classify("remove cgroup root", dir, err)
			}
		}
	}
	return nil
}

// writeFile writes one value to a cgroup control file (no O_CREAT: a
// missing file is the kernel lacking a feature, ErrNotFound).
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return classify("open", path, err)
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return classify("write "+strconv.Quote(value)+" to", path, werr)
	}
	if cerr != nil {
		return classify("close", path, cerr)
	}
	return nil
}

// classify wraps an OS error of a cgroup operation in its error class.
func classify(op, path string, err error) error {
	var class error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		class = errdefs.ErrNotFound
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		class = errdefs.ErrPermissionDenied
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ERANGE):
		class = errdefs.ErrInvalidArgument
	case errors.Is(err, syscall.EBUSY):
		class = errdefs.ErrFailedPrecondition
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.ENOMEM):
		class = errdefs.ErrResourceExhausted
	case errors.Is(err, syscall.ESRCH):
		class = errdefs.ErrNotFound
	default:
		class = errdefs.ErrInternal
	}
	return fmt.Errorf("%s %s: %v: %w", op, path, err, class)
}
