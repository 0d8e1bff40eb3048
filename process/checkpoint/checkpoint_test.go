package checkpoint

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "ckpt")
	want := &typesv1.ContainerID{Value: "c1", Parent: &typesv1.ContainerID{Value: "p"}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got := &typesv1.ContainerID{}
	if err := Read(path, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	// Overwrite: the new value replaces the old, and no temp file is left.
	if err := Write(path, &typesv1.ContainerID{Value: "c2"}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestReadClassifiesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := Read(filepath.Join(dir, "missing"), &typesv1.ContainerID{}); !errdefs.IsNotFound(err) {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte{0xff, 0xff, 0xff}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Read(bad, &typesv1.ContainerID{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("corrupt file: %v", err)
	}
}
