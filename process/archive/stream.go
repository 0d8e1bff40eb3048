package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/berthrt/berth/process/errdefs"
)

// maxZstdWindow is the largest zstd window accepted: the reference
// decoder's default limit (windowLog 27) without --memory.
const maxZstdWindow = 128 << 20

// Magic numbers of the compressed formats.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// stream is the decompressed layer: the tar bytes, hashed and counted as
// they are read.
type stream struct {
	src   source
	meter meter
	close func()
}

// openStream detects the compression of r from its first bytes and sets up
// the decompressed, metered stream; extra, when not nil, is fed the
// decompressed bytes too.
func openStream(r io.Reader, maxBytes int64, extra hash.Hash) (*stream, error) {
	s := &stream{close: func() {}}
	s.src.r = r
	br := bufio.NewReaderSize(&s.src, 64<<10)
	magic, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, s.classify("reading the layer", err)
	}
	var dec io.Reader = br
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, s.classify("gzip header", err)
		}
		dec = zr
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("archive: zstd decoder: %w", err)
		}
		s.close = zr.Close
		dec = zr
	}
	s.meter = meter{r: dec, h: sha256.New(), extra: extra, max: maxBytes}
	return s, nil
}

// diffID is "sha256:<hex>" of the bytes read so far.
func (s *stream) diffID() string {
	return "sha256:" + hex.EncodeToString(s.meter.h.Sum(nil))
}

// drain reads the rest of the decompressed stream (after the end of the
// tar) so that the digest covers it, and so that a corrupt compressed tail
// is noticed.
func (s *stream) drain(buf []byte) error {
	for {
		_, err := s.meter.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return s.classify("after the end of the tar", err)
		}
	}
}

// classify turns a read error of the decompressed stream into a classed
// error: the limit, the caller's own read error (unclassed), or a corrupt
// or truncated layer.
func (s *stream) classify(where string, err error) error {
	switch {
	case s.meter.over:
		return fmt.Errorf("archive: %s: layer is over the %d byte limit: %w", where, s.meter.max, errdefs.ErrResourceExhausted)
	case s.src.err != nil:
		return fmt.Errorf("archive: %s: reading the layer: %w", where, s.src.err)
	}
	return fmt.Errorf("archive: %s: layer stream is truncated or corrupt: %w (%w)", where, errdefs.ErrInvalidArgument, err)
}

// source remembers the caller's read error, so that it is not mistaken for
// a corrupt layer.
type source struct {
	r   io.Reader
	err error
}

// Read reads from the caller's reader.
func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// meter hashes and counts the decompressed bytes and stops at max.
type meter struct {
	r     io.Reader
	h     hash.Hash
	extra hash.Hash // Options.TarHash, or nil
	n     int64
	max   int64
	over  bool
}

// Read reads decompressed bytes, failing once more than max were read.
func (m *meter) Read(p []byte) (int, error) {
	if m.over {
		return 0, errdefs.ErrResourceExhausted
	}
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	if m.extra != nil {
		m.extra.Write(p[:n])
	}
	m.n += int64(n)
	if m.n > m.max {
		m.over = true
		return n, errdefs.ErrResourceExhausted
	}
	return n, err
}
