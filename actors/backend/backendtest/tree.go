package backendtest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Node is what Snapshot records of one entry of a tree. Diff compares every
// field but Blocks, Ino and Dev.
type Node struct {
	// Type is "dir", "file", "symlink", "fifo", "char", "block" or "socket".
	Type string
	// Mode is the permission bits with setuid, setgid and sticky.
	Mode uint32
	// UID and GID are the numeric owner.
	UID, GID uint32
	// Size is the size of files and symlinks (0 for the rest).
	Size int64
	// SHA256 is the hex digest of a file's content.
	SHA256 string
	// Target is a symlink's target.
	Target string
	// Rdev is "major:minor" for devices.
	Rdev string
	// Xattrs maps each extended attribute to its Go-quoted value, except the
	// LSM label security.selinux and overlayfs's private trusted.overlay.*.
	Xattrs map[string]string
	// MTime is the modification time in nanoseconds since the epoch.
	MTime int64
	// LinkTo is set on the second and later names of a multiply-linked
	// inode: the first name (in walk order) of that inode.
	LinkTo string
	// Blocks is the number of 512-byte blocks allocated (not compared).
	Blocks int64
	// Ino and Dev identify the inode (not compared).
	Ino, Dev uint64
}

// String describes the node on one line.
func (n Node) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %04o %d:%d", n.Type, n.Mode, n.UID, n.GID)
	switch n.Type {
	case "file":
		fmt.Fprintf(&b, " size=%d sha256=%.12s", n.Size, n.SHA256)
	case "symlink":
		fmt.Fprintf(&b, " -> %q", n.Target)
	case "char", "block":
		fmt.Fprintf(&b, " %s", n.Rdev)
	}
	if n.LinkTo != "" {
		fmt.Fprintf(&b, " hardlink=%s", n.LinkTo)
	}
	if len(n.Xattrs) > 0 {
		fmt.Fprintf(&b, " xattrs=%v", n.Xattrs)
	}
	fmt.Fprintf(&b, " mtime=%s", time.Unix(0, n.MTime).UTC().Format(time.RFC3339Nano))
	return b.String()
}

// Tree maps slash-separated paths relative to the root ("." for the root)
// to their nodes.
type Tree map[string]Node

// Paths returns the tree's paths, sorted.
func (t Tree) Paths() []string { return sortedKeys(t) }

// Snapshot walks root without following any symlink and records every
// entry, root included.
//
// A name that readdir lists as a character device but that lstat does not
// find is left out: overlayfs lists the whiteouts (0/0 character devices)
// of a lower layer's directory that is not merged with anything below
// (nothing under it to hide), yet every lookup of them fails with ENOENT,
// so for everything but readdir they are not there.
func Snapshot(root string) (Tree, error) {
	t := Tree{}
	inodes := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		n, err := snapNode(p)
		if err != nil && errors.Is(err, fs.ErrNotExist) && p != root && d.Type()&fs.ModeCharDevice != 0 {
			return nil // an overlayfs whiteout that only readdir shows
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if n.Type != "dir" {
			key := [2]uint64{n.Dev, n.Ino}
			if first, ok := inodes[key]; ok {
				n.LinkTo = first
			} else {
				inodes[key] = rel
			}
		}
		t[rel] = n
		return nil
	})
	return t, err
}

// snapNode records the entry at p.
func snapNode(p string) (Node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return Node{}, err
	}
	n := Node{
		Mode:   st.Mode & 0o7777,
		UID:    st.Uid,
		GID:    st.Gid,
		MTime:  st.Mtim.Nano(),
		Blocks: st.Blocks,
		Ino:    uint64(st.Ino), //nolint:unconvert // narrower on some GOARCHes
		Dev:    uint64(st.Dev), //nolint:unconvert // narrower on some GOARCHes
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		n.Type = "dir"
	case unix.S_IFREG:
		n.Type, n.Size = "file", st.Size
		n.SHA256, err = hashFile(p)
	case unix.S_IFLNK:
		n.Type, n.Size = "symlink", st.Size
		n.Target, err = os.Readlink(p)
	case unix.S_IFIFO:
		n.Type = "fifo"
	case unix.S_IFSOCK:
		n.Type = "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		n.Type = "char"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			n.Type = "block"
		}
		rdev := uint64(st.Rdev) //nolint:unconvert // narrower on some GOARCHes
		n.Rdev = fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
	}
	if err != nil {
		return n, err
	}
	n.Xattrs, err = readXattrs(p)
	return n, err
}

func hashFile(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readXattrs returns the recorded extended attributes of p (not followed).
func readXattrs(p string) (map[string]string, error) {
	n, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.EOPNOTSUPP) || n == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("llistxattr: %w", err)
	}
	buf := make([]byte, n)
	if n, err = unix.Llistxattr(p, buf); err != nil {
		return nil, fmt.Errorf("llistxattr: %w", err)
	}
	var out map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || name == "security.selinux" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		val := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, name, val); err != nil {
			return nil, fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = strconv.Quote(string(val[:sz]))
	}
	return out, nil
}

// Diff compares two trees and returns one line per difference, sorted by
// path; nil when they are equal.
func Diff(want, got Tree) []string {
	paths := map[string]bool{}
	for p := range want {
		paths[p] = true
	}
	for p := range got {
		paths[p] = true
	}
	var out []string
	for _, p := range sortedKeys(paths) {
		w, inWant := want[p]
		g, inGot := got[p]
		switch {
		case !inGot:
			out = append(out, fmt.Sprintf("missing %s (want %s)", p, w))
		case !inWant:
			out = append(out, fmt.Sprintf("unexpected %s (got %s)", p, g))
		default:
			for _, d := range diffNode(w, g) {
				out = append(out, p+": "+d)
			}
		}
	}
	return out
}

// diffNode lists the compared fields that differ.
func diffNode(w, g Node) []string {
	var out []string
	add := func(field string, wv, gv any) {
		out = append(out, fmt.Sprintf("%s: want %v, got %v", field, wv, gv))
	}
	if w.Type != g.Type {
		add("type", w.Type, g.Type)
		return out
	}
	if w.Mode != g.Mode {
		add("mode", fmt.Sprintf("%04o", w.Mode), fmt.Sprintf("%04o", g.Mode))
	}
	if w.UID != g.UID || w.GID != g.GID {
		add("owner", fmt.Sprintf("%d:%d", w.UID, w.GID), fmt.Sprintf("%d:%d", g.UID, g.GID))
	}
	if w.Size != g.Size {
		add("size", w.Size, g.Size)
	}
	if w.SHA256 != g.SHA256 {
		add("sha256", w.SHA256, g.SHA256)
	}
	if w.Target != g.Target {
		add("target", strconv.Quote(w.Target), strconv.Quote(g.Target))
	}
	if w.Rdev != g.Rdev {
		add("rdev", w.Rdev, g.Rdev)
	}
	if !equalMaps(w.Xattrs, g.Xattrs) {
		add("xattrs", w.Xattrs, g.Xattrs)
	}
	if w.MTime != g.MTime {
		add("mtime", time.Unix(0, w.MTime).UTC().Format(time.RFC3339Nano), time.Unix(0, g.MTime).UTC().Format(time.RFC3339Nano))
	}
	if w.LinkTo != g.LinkTo {
		add("hardlink", strconv.Quote(w.LinkTo), strconv.Quote(g.LinkTo))
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
