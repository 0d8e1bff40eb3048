package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/docker"
	"github.com/berthrt/berth/fixtures/images"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

// TestActorPublishesProgress: a GetImageRequest served by the actor over
// the docker store publishes every layer's progress on the event stream,
// down to done.
func TestActorPublishesProgress(t *testing.T) {
	layout := t.TempDir()
	built, err := images.OCILayout(layout, "v1", images.Standard(""))
	if err != nil {
		t.Fatal(err)
	}
	st, err := docker.New(docker.Options{Dir: filepath.Join(t.TempDir(), "store", "docker"), Logger: actortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sys := actortest.NewSystem(t)
	var mu sync.Mutex
	last := map[string]*storev1.PullProgress{}
	sub := sys.EventStream.Subscribe(func(evt any) {
		if p, ok := evt.(*storev1.PullProgress); ok {
			mu.Lock()
			last[p.GetLayerId()] = p
			mu.Unlock()
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	pid := sys.Root.Spawn(store.Props(st))
	req := &storev1.GetImageRequest{Backend: "copy", Image: &typesv1.Image{
		Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: "oci:" + layout},
	}}
	resp, err := ask.Request[*storev1.GetImageResponse](context.Background(), sys.Root, pid, req, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetImage().GetLayerIds(); len(got) != len(built.Images[0].DiffIDs) {
		t.Fatalf("layers %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range built.Images[0].DiffIDs {
		p := last[id]
		if p.GetPhase() != storev1.PullProgress_PHASE_DONE || p.GetCurrent() == 0 || p.GetCurrent() != p.GetTotal() || p.GetReference() != "oci:"+layout {
			t.Errorf("layer %s: last event %v", id, p)
		}
	}
}
