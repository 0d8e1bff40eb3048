// Package checkpoint writes and reads protobuf checkpoint files atomically: a
// reader sees the old file or the new one, never a torn one, even if the
// process or the host dies in the middle of a write.
//
// A write goes to a temporary file in the same directory, is fsynced, renamed
// over the target and then the directory is fsynced, so the rename itself is
// durable.
package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/process/errdefs"
)

// Write stores m at path atomically, creating parent directories (mode 0700).
func Write(path string, m proto.Message) error {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("checkpoint %s: marshal: %w", path, errors.Join(errdefs.ErrInvalidArgument, err))
	}
	return WriteFile(path, data, 0o600)
}

// WriteFile stores data at path atomically (temp file, fsync, rename, fsync dir).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("checkpoint %s: write: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("checkpoint %s: chmod: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("checkpoint %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint %s: close: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoint %s: rename: %w", path, err)
	}
	ok = true
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames and removals in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("checkpoint: fsync dir %s: %w", dir, err)
	}
	return nil
}

// Read loads the checkpoint at path into m. A missing file is ErrNotFound; a
// file that does not parse is ErrInvalidArgument.
func Read(path string, m proto.Message) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checkpoint %s: %w", path, errdefs.ErrNotFound)
		}
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("checkpoint %s: corrupt: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return nil
}
