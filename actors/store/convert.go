package store

import (
	"time"

	storev1 "github.com/berthrt/berth/messages/store/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

// ConfigToProto converts an ImageConfig to its wire form.
func ConfigToProto(c ImageConfig) *typesv1.ImageConfig {
	return &typesv1.ImageConfig{
		Entrypoint:   c.Entrypoint,
		Cmd:          c.Cmd,
		Env:          c.Env,
		WorkingDir:   c.WorkingDir,
		User:         c.User,
		Labels:       c.Labels,
		Os:           c.OS,
		Architecture: c.Architecture,
	}
}

// ConfigFromProto converts the wire form to an ImageConfig.
func ConfigFromProto(p *typesv1.ImageConfig) ImageConfig {
	return ImageConfig{
		Entrypoint:   p.GetEntrypoint(),
		Cmd:          p.GetCmd(),
		Env:          p.GetEnv(),
		WorkingDir:   p.GetWorkingDir(),
		User:         p.GetUser(),
		Labels:       p.GetLabels(),
		OS:           p.GetOs(),
		Architecture: p.GetArchitecture(),
	}
}

// ImageToProto converts an Image to its wire form.
func ImageToProto(i Image) *storev1.ImageInfo {
	var created float64
	if !i.Created.IsZero() {
		created = float64(i.Created.UnixNano()) / 1e9
	}
	return &storev1.ImageInfo{
		Reference:    i.Reference,
		Digest:       i.Digest,
		ConfigDigest: i.ConfigDigest,
		Layers:       i.Layers,
		LayerIds:     i.LayerIDs,
		Config:       ConfigToProto(i.Config),
		SizeBytes:    i.Size,
		Created:      created,
	}
}

// ImageFromProto converts the wire form to an Image.
func ImageFromProto(p *storev1.ImageInfo) Image {
	var created time.Time
	if p.GetCreated() != 0 {
		created = time.Unix(0, int64(p.GetCreated()*1e9)).UTC()
	}
	return Image{
		Reference:    p.GetReference(),
		Digest:       p.GetDigest(),
		ConfigDigest: p.GetConfigDigest(),
		LayerIDs:     p.GetLayerIds(),
		Layers:       p.GetLayers(),
		Config:       ConfigFromProto(p.GetConfig()),
		Size:         p.GetSizeBytes(),
		Created:      created,
	}
}

// ProgressToProto converts a progress event to its wire form.
func ProgressToProto(p Progress) *storev1.PullProgress {
	return &storev1.PullProgress{
		Reference: p.Reference,
		LayerId:   p.LayerID,
		Phase:     storev1.PullProgress_Phase(p.Phase), // the same numbers
		Current:   p.Current,
		Total:     p.Total,
	}
}

// ProgressFromProto converts a published progress event back.
func ProgressFromProto(p *storev1.PullProgress) Progress {
	return Progress{
		Reference: p.GetReference(),
		LayerID:   p.GetLayerId(),
		Phase:     Phase(p.GetPhase()), // the same numbers
		Current:   p.GetCurrent(),
		Total:     p.GetTotal(),
	}
}
