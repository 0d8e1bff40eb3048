package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// dirMeta is the mode and times of a directory entry, applied at the end.
type dirMeta struct {
	rel   string
	depth int // -1 for the root, so that it comes last
	mode  uint32
	times [2]unix.Timespec
}

// dirTimes collects the directory entries of a layer; a directory listed
// twice keeps its last metadata.
type dirTimes struct {
	list  []dirMeta
	index map[string]int
}

// add records e, a directory entry.
func (d *dirTimes) add(e *entry) {
	m := dirMeta{rel: e.rel, depth: strings.Count(e.rel, "/"), mode: modeOf(e.hdr), times: timesOf(e.hdr)}
	if e.rel == "." {
		m.depth = -1
	}
	if i, ok := d.index[e.rel]; ok {
		d.list[i] = m
		return
	}
	if d.index == nil {
		d.index = make(map[string]int)
	}
	d.index[e.rel] = len(d.list)
	d.list = append(d.list, m)
}

// apply sets the modes and times, deepest directory first: after the
// children are written (which changes a directory's mtime), and with a
// parent's mode (perhaps read-only) after its children's. A directory that
// a later entry replaced, or that now sits under one, is skipped.
func (d *dirTimes) apply(ctx context.Context, r *root) error {
	slices.SortStableFunc(d.list, func(a, b dirMeta) int { return b.depth - a.depth })
	for i := range d.list {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("archive: setting directory times: %w", err)
			}
		}
		if err := d.list[i].apply(r); err != nil {
			return err
		}
	}
	return nil
}

// apply sets m's mode and times if m.rel is still a directory.
func (m *dirMeta) apply(r *root) error {
	dir, base := splitRel(m.rel)
	pfd, err := r.dir(dir, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil
	}
	if err != nil {
		return dirErr(m.rel, "open parent", err)
	}
	if !isDirAt(pfd, base) {
		return nil
	}
	if err := unix.Fchmodat(pfd, base, m.mode, 0); err != nil {
		return dirErr(m.rel, "chmod", err)
	}
	if err := unix.UtimesNanoAt(pfd, base, m.times[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return dirErr(m.rel, "utimensat", err)
	}
	return nil
}

// dirErr is the error for a failed system call on a directory at the end.
func dirErr(rel, op string, err error) error {
	return fmt.Errorf("archive: directory %s: %s: %w (%w)", quoteName(rel), op, err, errClass(err))
}
