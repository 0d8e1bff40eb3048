package docker

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/store"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// metadataFile is Mesos's name for the image metadata file.
const metadataFile = "storedImages"

// persistLocked writes every image to <Dir>/storedImages atomically. Layer
// paths are not stored: they are recomputed from the layer ids on load, so
// the store directory may move. s.mu must be held.
func (s *Store) persistLocked() error {
	msg := &storev1.StoredImages{}
	for _, img := range sortedImages(s.images) {
		info := store.ImageToProto(img)
		info.Layers = nil
		msg.Images = append(msg.Images, &storev1.StoredImage{Info: info, Source: img.Source})
	}
	if err := checkpoint.Write(s.metaPath, msg); err != nil {
		return fmt.Errorf("docker store: save metadata: %w", err)
	}
	return nil
}

// loadMetadata reads <Dir>/storedImages. A missing file is an empty store. A
// file that does not parse is logged, moved aside to storedImages.corrupt-<unix
// time> for inspection, and gives an empty store: the images are imported
// again when asked for, and their layers are still in the cache.
func (s *Store) loadMetadata() map[string]store.Image {
	images := map[string]store.Image{}
	msg := &storev1.StoredImages{}
	err := checkpoint.Read(s.metaPath, msg)
	switch {
	case err == nil:
	case errors.Is(err, errdefs.ErrNotFound):
		return images
	case errors.Is(err, errdefs.ErrInvalidArgument):
		aside := s.metaPath + ".corrupt-" + strconv.FormatInt(s.now().Unix(), 10)
		s.log.Warn("docker store: image metadata is corrupt; starting empty", zap.String("path", s.metaPath), zap.String("moved_to", aside), zap.Error(err))
		if rerr := os.Rename(s.metaPath, aside); rerr != nil {
			s.log.Warn("docker store: cannot move corrupt metadata aside", zap.Error(rerr))
		}
		return images
	default:
		s.log.Warn("docker store: cannot read image metadata; starting empty", zap.String("path", s.metaPath), zap.Error(err))
		return images
	}
	for _, rec := range msg.GetImages() {
		img := store.ImageFromProto(rec.GetInfo())
		img.Source = rec.GetSource()
		if err := validRecord(img); err != nil {
			s.log.Warn("docker store: dropping a malformed metadata record", zap.String("reference", img.Reference), zap.Error(err))
			continue
		}
		images[img.Reference] = img
	}
	return images
}

// validRecord checks what the store trusts from a record: a reference and
// layer ids that are digests (they become paths).
func validRecord(img store.Image) error {
	if img.Reference == "" {
		return fmt.Errorf("record without reference: %w", errdefs.ErrInvalidArgument)
	}
	for _, id := range img.LayerIDs {
		if err := checkDigest(id, "layer id"); err != nil {
			return err
		}
	}
	return nil
}

// sortedImages returns the images sorted by reference.
func sortedImages(m map[string]store.Image) []store.Image {
	out := make([]store.Image, 0, len(m))
	for _, img := range m {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reference < out[j].Reference })
	return out
}
