package lockfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthrt/berth/process/errdefs"
)

func TestAcquireExcludesAndRecordsHolder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "berth-test.lock")
	l, err := Acquire(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if Holder(path) != os.Getpid() {
		t.Fatalf("holder %d", Holder(path))
	}
	// flock locks belong to open file descriptions: a second open in the same
	// process conflicts like another process would.
	if _, err := Acquire(context.Background(), path, nil); !errdefs.IsUnavailable(err) {
		t.Fatalf("second lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	told := 0
	if _, err := Acquire(ctx, path, func(int) { told++ }); !errdefs.IsDeadlineExceeded(err) || told != 1 {
		t.Fatalf("waiting lock: %v (told %d)", err, told)
	}
	l.Release()
	l2, err := Acquire(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}
