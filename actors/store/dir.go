package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Helpers for the stores' directories, shared by the implementations.

// DiscardDir removes dir atomically from where it is: it is renamed into
// stagingDir first (which the store empties at Recover, so a crash midway
// leaves nothing in place), then deleted.
func DiscardDir(stagingDir, dir string) error {
	tmp, err := os.MkdirTemp(stagingDir, "gc-")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(dir, filepath.Join(tmp, filepath.Base(dir))); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: remove %s: %w", dir, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("store: remove %s: %w", dir, err)
	}
	return nil
}

// DirSize sums the sizes of the regular files under dir.
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// SyncFS flushes the filesystem holding dir (syncfs(2)), so that a rename
// that publishes dir's contents never publishes data that is still only in
// the page cache.
func SyncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", dir, err)
	}
	defer func() { _ = unix.Close(fd) }()
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("store: syncfs %s: %w", dir, err)
	}
	return nil
}
