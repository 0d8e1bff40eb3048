package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/archive"
	"github.com/berthrt/berth/process/errdefs"
)

// fuzzClasses are the error classes Extract may return for any input.
var fuzzClasses = []error{errdefs.ErrInvalidArgument, errdefs.ErrResourceExhausted, errdefs.ErrPermissionDenied, errdefs.ErrFailedPrecondition}

// FuzzExtract: whatever the bytes, Extract returns without panicking, with
// nil or a classed error, and writes nothing outside the layer directory.
//
//	go test -run '^$' -fuzz FuzzExtract -fuzztime 30s ./process/archive/
func FuzzExtract(f *testing.F) {
	for _, c := range layers.Hostile() {
		if len(c.Tar) <= 8<<10 {
			f.Add(c.Tar, false)
		}
	}
	for _, c := range validCases() {
		if len(c.raw) <= 8<<10 {
			f.Add(c.raw, false)
			f.Add(layers.Gzip(c.raw), true)
		}
	}
	f.Add(whiteoutLayer, true)
	f.Add(layers.Tar(
		L{Name: "s", Type: tar.TypeSymlink, Link: "../outside"},
		L{Name: "s", Type: tar.TypeDir},
		L{Name: "s/x", Body: "x"},
		L{Name: "h", Type: tar.TypeLink, Link: "s/x"},
		L{Name: "s/.wh.x"},
	), true)
	// One sandbox per worker process, its layer directory emptied before
	// each run: creating directories is the slow part of an iteration.
	s := newSandbox(f)
	before := s.snapshot(f)
	f.Fuzz(func(t *testing.T, blob []byte, overlay bool) {
		opts := archive.Options{MaxBytes: 8 << 20, MaxEntries: 512}
		if overlay {
			opts.Whiteouts = archive.WhiteoutOverlay
		}
		s.reset(t)
		_, err := archive.Extract(context.Background(), bytes.NewReader(blob), s.layer, withoutRoot(opts))
		if err != nil && !classed(err) {
			t.Errorf("error without an expected class: %v", err)
		}
		s.checkContained(t, before)
	})
}

// classed reports whether err has one of fuzzClasses.
func classed(err error) bool {
	for _, c := range fuzzClasses {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}
