package store

import (
	"context"
	"net/url"
	"sort"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/actors/ask"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

// Actor serves one Store over storev1 messages. Requests run off the mailbox;
// the Store coalesces concurrent pulls of one image itself. The progress of
// every GetImageRequest is published on the actor system's event stream as
// *storev1.PullProgress (subscribe to follow pulls; nobody listening costs
// nothing but the conversion).
type Actor struct {
	s      Store
	ctx    context.Context
	cancel context.CancelFunc
}

// Props returns the props of an actor serving s.
func Props(s Store) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		ctx, cancel := context.WithCancel(context.Background())
		return &Actor{s: s, ctx: ctx, cancel: cancel}
	})
}

// Reference returns the reference string of an image message.
func Reference(img *typesv1.Image) string {
	if img.GetType() == typesv1.Image_TYPE_APPC {
		a := img.GetAppc()
		return AppcReference(a.GetId(), a.GetName(), a.GetLabels())
	}
	return img.GetDocker().GetName()
}

// AppcReference is the appc store's reference form: the image id when
// there is one, else NAME[,LABEL=VALUE...] with the labels sorted and their
// values query-escaped.
func AppcReference(id, name string, labels map[string]string) string {
	if id != "" {
		return id
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		b.WriteString("," + k + "=" + url.QueryEscape(labels[k]))
	}
	return b.String()
}

// Receive dispatches the messages.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Stopping:
		a.cancel()
	case *storev1.GetImageRequest:
		sys := c.ActorSystem()
		var to *actor.PID
		if m.GetProgressToId() != "" {
			to = actor.NewPID(m.GetProgressToAddress(), m.GetProgressToId())
		}
		ask.Go(c, func() (proto.Message, error) {
			ctx := WithProgress(a.ctx, func(p Progress) {
				e := ProgressToProto(p)
				sys.EventStream.Publish(e)
				if to != nil {
					sys.Root.Send(to, e)
				}
			})
			img, err := a.s.Get(ctx, Reference(m.GetImage()), m.GetBackend(), m.GetImage().GetCached())
			if err != nil {
				return nil, err
			}
			return &storev1.GetImageResponse{Image: ImageToProto(img)}, nil
		})
	case *storev1.ListImagesRequest:
		ask.Go(c, func() (proto.Message, error) {
			imgs, err := a.s.List(a.ctx)
			if err != nil {
				return nil, err
			}
			resp := &storev1.ListImagesResponse{}
			for _, i := range imgs {
				resp.Images = append(resp.Images, ImageToProto(i))
			}
			return resp, nil
		})
	case *storev1.RemoveImageRequest:
		ask.Go(c, func() (proto.Message, error) {
			return &storev1.RemoveImageResponse{}, a.s.Remove(a.ctx, m.GetReference())
		})
	case *storev1.PruneStoreRequest:
		ask.Go(c, func() (proto.Message, error) {
			r, err := a.s.Prune(a.ctx, m.GetExcluded(), m.GetActiveLayers())
			return &storev1.PruneStoreResponse{RemovedImages: r.RemovedImages, RemovedLayers: r.RemovedLayers, ReclaimedBytes: r.ReclaimedBytes}, err
		})
	case *storev1.RecoverStoreRequest:
		ask.Go(c, func() (proto.Message, error) {
			r, err := a.s.Recover(a.ctx)
			return &storev1.RecoverStoreResponse{Images: uint32(r.Images), Dropped: r.Dropped}, err
		})
	}
}
