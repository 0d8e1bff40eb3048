package appc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/fixtures/aci"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// The generic store actor serves the appc store: an image message with a
// name and labels, or an id, reaches Get in the store's reference form.
func TestStoreActorServesAppcImages(t *testing.T) {
	srv := newACIServer(t)
	base := srv.put(t, "example.com/base", "1", aci.Spec{Manifest: manifest("example.com/base", "1")})
	app := srv.put(t, "example.com/app", "1.0,rc", aci.Spec{Manifest: func() aci.Manifest {
		m := manifest("example.com/app", "1.0,rc", dep("example.com/base", "1"))
		m.Labels = append(m.Labels, aci.Label{Name: "env", Value: "canary"})
		return m
	}()})
	s := newStore(t, tempDir(t), srv.prefix())
	sys := actortest.NewSystem(t)
	pid := sys.Root.Spawn(store.Props(s))
	ctx := context.Background()
	get := func(img *typesv1.Image) (*storev1.GetImageResponse, error) {
		return ask.Request[*storev1.GetImageResponse](ctx, sys.Root, pid, &storev1.GetImageRequest{Image: img}, 30*time.Second)
	}
	byName := &typesv1.Image{Type: typesv1.Image_TYPE_APPC, Cached: true, Appc: &typesv1.Image_Appc{
		Name: "example.com/app", Labels: map[string]string{"version": "1.0,rc", "env": "canary"}}}
	r, err := get(byName)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetImage().GetLayerIds(); len(got) != 2 || got[0] != base.ID || got[1] != app.ID {
		t.Errorf("layers %v", got)
	}
	byID := &typesv1.Image{Type: typesv1.Image_TYPE_APPC, Cached: true, Appc: &typesv1.Image_Appc{Id: app.ID, Name: "ignored"}}
	if r, err := get(byID); err != nil || r.GetImage().GetDigest() != app.ID {
		t.Errorf("by id: %v %v", r, err)
	}
	wrongLabel := &typesv1.Image{Type: typesv1.Image_TYPE_APPC, Cached: true, Appc: &typesv1.Image_Appc{
		Name: "example.com/app", Labels: map[string]string{"version": "1.0,rc", "env": "prod"}}}
	if _, err := get(wrongLabel); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a served image with other labels: %v, want ErrInvalidArgument", err)
	}
}
