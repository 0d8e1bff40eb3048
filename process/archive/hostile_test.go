package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
)

// TestExtractHostile runs the hostile corpus in both whiteout forms and
// both parent resolutions: each layer is rejected with its class, the
// error says what was wrong, and nothing outside the layer changed.
func TestExtractHostile(t *testing.T) {
	if _, err := os.Lstat(layers.Canary); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("canary %s exists before the test (%v): remove it", layers.Canary, err)
	}
	for _, c := range layers.Hostile() {
		for _, m := range modes {
			for _, wf := range []archive.WhiteoutFormat{archive.WhiteoutAUFS, archive.WhiteoutOverlay} {
				t.Run(c.Name+"/"+m.name+"/"+wfName(wf), func(t *testing.T) {
					opts := c.Opts
					opts.Whiteouts = wf
					s := newSandbox(t)
					before := s.snapshot(t)
					_, err := archive.Extract(context.Background(), bytes.NewReader(c.Tar), s.layer, m.opts(withoutRoot(opts)))
					if !errors.Is(err, c.WantClass) {
						t.Errorf("error %v, want class %v", err, c.WantClass)
					}
					if err != nil && !strings.Contains(err.Error(), c.Mention) {
						t.Errorf("error %q does not mention %q", err, c.Mention)
					}
					s.checkContained(t, before)
				})
			}
		}
	}
}

func wfName(wf archive.WhiteoutFormat) string {
	if wf == archive.WhiteoutOverlay {
		return "overlay"
	}
	return "aufs"
}
