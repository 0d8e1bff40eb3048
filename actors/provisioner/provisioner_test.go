package provisioner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/backend"
	"github.com/berthrt/berth/actors/backend/copyfs"
	"github.com/berthrt/berth/actors/provisioner"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/appc"
	"github.com/berthrt/berth/actors/store/docker"
	"github.com/berthrt/berth/fixtures/aci"
	"github.com/berthrt/berth/fixtures/layers"
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

// TestPruneEveryStore: a prune reaches the docker and the appc store and
// reports what both removed, appc images named appc:...; an appc image a
// container uses stays.
func TestPruneEveryStore(t *testing.T) {
	actortest.RequiresRoot(t)
	dir := t.TempDir()
	dst, err := docker.New(docker.Options{Dir: filepath.Join(dir, "docker"), Builtin: builtin.Build, BuiltinReference: builtin.Reference, Logger: actortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ast, err := appc.New(appc.Options{Dir: filepath.Join(dir, "appc"), Logger: actortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dst.Get(ctx, builtin.Reference, "copy", true); err != nil {
		t.Fatal(err)
	}
	var kept string
	for _, name := range []string{"example.com/unused", "example.com/used"} {
		path := filepath.Join(dir, filepath.Base(name)+".aci")
		img, err := aci.Write(path, aci.Spec{
			Manifest: aci.Manifest{Name: name, Labels: aci.Labels("version", "1"), App: &aci.App{Exec: []string{"/bin/true"}, User: "0", Group: "0"}},
			Files:    []layers.Entry{{Name: "etc/" + filepath.Base(name), Body: "x"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ast.Import(ctx, path); err != nil {
			t.Fatal(err)
		}
		kept = img.ID
	}
	sys := actortest.NewSystem(t)
	prov := sys.Root.Spawn(provisioner.Props(provisioner.Options{
		Root: filepath.Join(dir, "provisioner"), DefaultBackend: "copy",
		Backends: map[string]*actor.PID{"copy": sys.Root.Spawn(backend.Props(copyfs.New()))},
		Stores: map[typesv1.Image_Type]*actor.PID{
			typesv1.Image_TYPE_DOCKER: sys.Root.Spawn(store.Props(dst)),
			typesv1.Image_TYPE_APPC:   sys.Root.Spawn(store.Props(ast)),
		},
		Logger: actortest.Logger(t),
	}))
	if _, err := ask.Request[*provisionerv1.RecoverProvisionerResponse](ctx, sys.Root, prov, &provisionerv1.RecoverProvisionerRequest{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	id := &typesv1.ContainerID{Value: "berth-test-prune-appc"}
	image := &typesv1.Image{Type: typesv1.Image_TYPE_APPC, Appc: &typesv1.Image_Appc{Id: kept}, Cached: true}
	if _, err := ask.Request[*provisionerv1.ProvisionResponse](ctx, sys.Root, prov, &provisionerv1.ProvisionRequest{ContainerId: id, Image: image}, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ask.Request[*provisionerv1.DestroyProvisionResponse](ctx, sys.Root, prov, &provisionerv1.DestroyProvisionRequest{ContainerId: id}, time.Minute)
	})
	p, err := ask.Request[*provisionerv1.PruneImagesResponse](ctx, sys.Root, prov, &provisionerv1.PruneImagesRequest{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var docker, appcs []string
	for _, ref := range p.GetRemovedImages() {
		if strings.HasPrefix(ref, "appc:") {
			appcs = append(appcs, ref)
		} else {
			docker = append(docker, ref)
		}
	}
	if len(docker) != 1 || docker[0] != builtin.Reference || len(appcs) != 1 || !strings.Contains(appcs[0], "unused") {
		t.Errorf("removed %v; want %s and the unused appc image", p.GetRemovedImages(), builtin.Reference)
	}
	imgs, err := ast.List(ctx)
	if err != nil || len(imgs) != 1 || !strings.Contains(imgs[0].Reference, "used") {
		t.Errorf("appc images left: %v %v; want the one in use", imgs, err)
	}
}
