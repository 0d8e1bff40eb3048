package provisioner_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/copyfs"
	"github.com/berthrt/berth/actors/provisioner"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/docker"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/builtin"
)

// gatedStore is the real docker store whose Get waits for a gate, so that a
// test can hold a provision between asking for its image and getting it.
type gatedStore struct {
	*docker.Store
	started chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) Get(ctx context.Context, ref, backend string, cached bool) (store.Image, error) {
	g.started <- struct{}{}
	<-g.gate
	return g.Store.Get(ctx, ref, backend, cached)
}

// TestPruneWaitsForProvisions: a prune that arrives while a provision is
// still getting its image waits for it, so it keeps that image and its
// layers, and the rootfs is complete. A prune after the container is
// destroyed removes them.
func TestPruneWaitsForProvisions(t *testing.T) {
	actortest.RequiresRoot(t)
	dir := t.TempDir()
	st, err := docker.New(docker.Options{
		Dir: filepath.Join(dir, "store"), Builtin: builtin.Build, BuiltinReference: builtin.Reference, Logger: actortest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	sys := actortest.NewSystem(t)
	spawn := func(p *actor.Props) *actor.PID {
		pid := sys.Root.Spawn(p)
		t.Cleanup(func() { _ = sys.Root.StopFuture(pid).Wait() })
		return pid
	}
	ctx := context.Background()
	if _, err := st.Get(ctx, builtin.Reference, "copy", true); err != nil {
		t.Fatal(err)
	}
	gated := &gatedStore{Store: st, started: make(chan struct{}, 1), gate: make(chan struct{})}
	storePID := spawn(store.Props(gated))
	prov := spawn(provisioner.Props(provisioner.Options{
		Root: filepath.Join(dir, "provisioner"), DefaultBackend: "copy",
		Backends: map[string]*actor.PID{"copy": spawn(backend.Props(copyfs.New()))},
		Stores:   map[typesv1.Image_Type]*actor.PID{typesv1.Image_TYPE_DOCKER: storePID},
		Logger:   actortest.Logger(t),
	}))
	if _, err := ask.Request[*provisionerv1.RecoverProvisionerResponse](ctx, sys.Root, prov, &provisionerv1.RecoverProvisionerRequest{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	image := &typesv1.Image{Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: builtin.Reference}, Cached: true}
	id := &typesv1.ContainerID{Value: "berth-test-prune"}
	provision := sys.Root.RequestFuture(prov, &provisionerv1.ProvisionRequest{ContainerId: id, Image: image}, time.Minute)
	// The provision is getting its image: the prune arrives before the
	// provisioner knows which layers the container gets.
	<-gated.started
	prune := sys.Root.RequestFuture(prov, &provisionerv1.PruneImagesRequest{}, time.Minute)
	time.Sleep(50 * time.Millisecond) // let a prune that did not wait start
	close(gated.gate)
	res, err := provision.Result()
	if err != nil {
		t.Fatal(err)
	}
	pr, ok := res.(*provisionerv1.ProvisionResponse)
	if !ok {
		t.Fatalf("provision: %v", res)
	}
	res, err = prune.Result()
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := res.(*provisionerv1.PruneImagesResponse); !ok || len(p.GetRemovedImages())+len(p.GetRemovedLayers()) != 0 {
		t.Fatalf("prune during the provision removed %v; want nothing", res)
	}
	if _, err := os.Stat(filepath.Join(pr.GetRootfs(), "bin", "busybox")); err != nil {
		t.Errorf("the rootfs is incomplete: %v", err)
	}
	imgs, err := st.List(ctx)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images after the prune: %v, %v; want the built-in one", imgs, err)
	}
	for _, l := range imgs[0].Layers {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("layer of the running container pruned: %v", err)
		}
	}
	if _, err := ask.Request[*provisionerv1.DestroyProvisionResponse](ctx, sys.Root, prov, &provisionerv1.DestroyProvisionRequest{ContainerId: id}, time.Minute); err != nil {
		t.Fatal(err)
	}
	p, err := ask.Request[*provisionerv1.PruneImagesResponse](ctx, sys.Root, prov, &provisionerv1.PruneImagesRequest{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.GetRemovedImages()) != 1 || len(p.GetRemovedLayers()) != len(imgs[0].LayerIDs) {
		t.Errorf("prune after the destroy removed %v and %d layers; want the image and its %d layers", p.GetRemovedImages(), len(p.GetRemovedLayers()), len(imgs[0].LayerIDs))
	}
}
