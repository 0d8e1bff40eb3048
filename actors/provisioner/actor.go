package provisioner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/async"
	backendv1 "github.com/berthrt/berth/messages/backend/v1"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// Options configure the provisioner actor.
type Options struct {
	// Root is <work_dir>/provisioner.
	Root string
	// DefaultBackend is used when a request names none.
	DefaultBackend string
	// Backends are the backend actors by name.
	Backends map[string]*actor.PID
	// Stores are the store actors by image type.
	Stores map[typesv1.Image_Type]*actor.PID
	// Unavailable explains backends that exist but cannot run here, by name.
	Unavailable map[string]string
	// StoreTimeout bounds a pull; BackendTimeout a provision or destroy.
	StoreTimeout, BackendTimeout time.Duration
	Logger                       *zap.Logger
}

// info is what the provisioner knows of one container.
type info struct {
	rootfses []rootfsRef
	layers   []string
	// images are the references provisioned; a prune keeps them.
	images []string
	// inFlight counts provisions running; destroys wait for them.
	inFlight int
	// destroying holds the requesters of a destroy; nil when not destroying.
	destroying []*actor.PID
	destroyed  bool
}

// Actor is the provisioner.
type Actor struct {
	o          Options
	layout     Layout
	containers map[string]*info
	// provisioning counts provisions in flight; a prune waits in
	// deferredPrunes until it is zero, so that it never removes an image a
	// container has just been given but not yet recorded.
	provisioning   int
	deferredPrunes []deferredPrune
}

// deferredPrune is a prune request waiting for the provisions in flight.
type deferredPrune struct {
	sender *actor.PID
	req    *provisionerv1.PruneImagesRequest
}

// Props returns the provisioner's props.
func Props(o Options) *actor.Props {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.StoreTimeout == 0 {
		o.StoreTimeout = 30 * time.Minute
	}
	if o.BackendTimeout == 0 {
		o.BackendTimeout = 30 * time.Minute
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{o: o, layout: Layout{Root: o.Root}, containers: map[string]*info{}}
	})
}

// Receive dispatches the messages.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *provisionerv1.ProvisionRequest:
		a.onProvision(c, m)
	case *provisionerv1.DestroyProvisionRequest:
		a.onDestroy(c, m.GetContainerId().GetValue())
	case *provisionerv1.RecoverProvisionerRequest:
		a.onRecover(c, m)
	case *provisionerv1.PruneImagesRequest:
		a.onPrune(c, m)
	}
}

func (a *Actor) backendNames() string {
	names := make([]string, 0, len(a.o.Backends))
	for n := range a.o.Backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (a *Actor) onProvision(c actor.Context, m *provisionerv1.ProvisionRequest) {
	id := m.GetContainerId().GetValue()
	if !safeName.MatchString(id) {
		ask.Respond(c, nil, fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument))
		return
	}
	name := m.GetBackend()
	if name == "" {
		name = a.o.DefaultBackend
	}
	backend, ok := a.o.Backends[name]
	if !ok {
		if why, known := a.o.Unavailable[name]; known {
			ask.Respond(c, nil, fmt.Errorf("rootfs backend %q: %s: %w", name, why, errdefs.ErrNotImplemented))
			return
		}
		ask.Respond(c, nil, fmt.Errorf("unknown rootfs backend %q (available: %s): %w", name, a.backendNames(), errdefs.ErrInvalidArgument))
		return
	}
	store, ok := a.o.Stores[m.GetImage().GetType()]
	if !ok {
		ask.Respond(c, nil, fmt.Errorf("no image store for images of type %v: %w", m.GetImage().GetType(), errdefs.ErrNotImplemented))
		return
	}
	inf := a.containers[id]
	if inf == nil {
		inf = &info{}
		a.containers[id] = inf
	}
	if inf.destroying != nil || inf.destroyed {
		ask.Respond(c, nil, fmt.Errorf("container %s is being destroyed: %w", id, errdefs.ErrFailedPrecondition))
		return
	}
	inf.inFlight++
	a.provisioning++
	done := func(resp *provisionerv1.ProvisionResponse, err error) {
		inf.inFlight--
		a.provisioning--
		ask.Respond(c, resp, err)
		a.maybeDestroy(c, id)
		a.runDeferredPrunes(c)
	}
	ask.Reenter(c, store, &storev1.GetImageRequest{Image: m.GetImage(), Backend: name}, a.o.StoreTimeout, func(r *storev1.GetImageResponse, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		img := r.GetImage()
		rootfsID, err := newRootfsID()
		if err != nil {
			done(nil, err)
			return
		}
		ref := rootfsRef{Backend: name, ID: rootfsID}
		inf.rootfses = append(inf.rootfses, ref)
		inf.layers = append(inf.layers, img.GetLayers()...)
		inf.images = append(inf.images, img.GetReference())
		rootfs := a.layout.RootfsDir(id, name, rootfsID)
		backendDir := a.layout.BackendDir(id, name)
		async.Run(c, time.Minute, func() (interface{}, error) {
			return nil, os.MkdirAll(filepath.Dir(rootfs), 0o700)
		}, func(_ interface{}, err error) {
			if err != nil {
				done(nil, fmt.Errorf("provisioner: %w", err))
				return
			}
			req := &backendv1.ProvisionRootfsRequest{Layers: img.GetLayers(), Rootfs: rootfs, BackendDir: backendDir}
			ask.Reenter(c, backend, req, a.o.BackendTimeout, func(br *backendv1.ProvisionRootfsResponse, err error) {
				if err != nil {
					done(nil, fmt.Errorf("backend %s: %w", name, err))
					return
				}
				layers := &provisionerv1.ContainerLayers{Paths: inf.layers, ImageReference: img.GetReference(), ImageConfig: img.GetConfig(), ImageReferences: inf.images}
				async.Run(c, time.Minute, func() (interface{}, error) {
					return nil, checkpoint.Write(a.layout.LayersFile(id), layers)
				}, func(_ interface{}, err error) {
					if err != nil {
						done(nil, err)
						return
					}
					done(&provisionerv1.ProvisionResponse{
						Rootfs: rootfs, Backend: name, ImageConfig: img.GetConfig(),
						EphemeralVolumes: br.GetEphemeralVolumes(), ImageReference: img.GetReference(), ImageDigest: img.GetDigest(),
					}, nil)
				})
			})
		})
	})
}

// onDestroy destroys every rootfs of a container once no provision of it is
// in flight, then removes its directory. Unknown containers answer false.
func (a *Actor) onDestroy(c actor.Context, id string) {
	inf := a.containers[id]
	if inf == nil || inf.destroyed {
		ask.Respond(c, &provisionerv1.DestroyProvisionResponse{Destroyed: false}, nil)
		return
	}
	if inf.destroying == nil {
		inf.destroying = []*actor.PID{}
	}
	inf.destroying = append(inf.destroying, c.Sender())
	a.maybeDestroy(c, id)
}

// maybeDestroy starts a requested destroy when nothing is in flight.
func (a *Actor) maybeDestroy(c actor.Context, id string) {
	inf := a.containers[id]
	if inf == nil || inf.destroying == nil || inf.inFlight > 0 || inf.destroyed {
		return
	}
	inf.destroyed = true
	a.destroyRootfses(c, id, inf.rootfses, func(err error) {
		waiters := inf.destroying
		delete(a.containers, id)
		for _, w := range waiters {
			ask.Reply(c, w, &provisionerv1.DestroyProvisionResponse{Destroyed: true}, err)
		}
	})
}

// destroyRootfses asks the backends to destroy each rootfs, one after the
// other, then removes the container's directory; every step runs even if an
// earlier one failed, and the errors are joined.
func (a *Actor) destroyRootfses(c actor.Context, id string, refs []rootfsRef, done func(error)) {
	var errs []string
	var step func(i int)
	step = func(i int) {
		if i == len(refs) {
			async.Run(c, 10*time.Minute, func() (interface{}, error) {
				return nil, os.RemoveAll(a.layout.ContainerDir(id))
			}, func(_ interface{}, err error) {
				if err != nil {
					errs = append(errs, err.Error())
				}
				if len(errs) > 0 {
					done(fmt.Errorf("destroying the rootfses of %s: %s: %w", id, strings.Join(errs, "; "), errdefs.ErrInternal))
					return
				}
				done(nil)
			})
			return
		}
		ref := refs[i]
		backend, ok := a.o.Backends[ref.Backend]
		if !ok {
			errs = append(errs, fmt.Sprintf("rootfs %s: backend %q is not available to destroy it", ref.ID, ref.Backend))
			step(i + 1)
			return
		}
		req := &backendv1.DestroyRootfsRequest{Rootfs: a.layout.RootfsDir(id, ref.Backend, ref.ID), BackendDir: a.layout.BackendDir(id, ref.Backend)}
		ask.Reenter(c, backend, req, a.o.BackendTimeout, func(_ *backendv1.DestroyRootfsResponse, err error) {
			if err != nil {
				errs = append(errs, fmt.Sprintf("rootfs %s: %v", ref.ID, err))
			}
			step(i + 1)
		})
	}
	step(0)
}

// onRecover rebuilds the table from disk: known containers keep their
// rootfses; every other container directory is destroyed. Then the stores
// recover.
func (a *Actor) onRecover(c actor.Context, m *provisionerv1.RecoverProvisionerRequest) {
	known := map[string]bool{}
	for _, id := range m.GetKnown() {
		known[id.GetValue()] = true
	}
	async.Run(c, time.Minute, func() (interface{}, error) {
		found, err := a.layout.listContainers()
		if err != nil {
			return nil, err
		}
		used := map[string]*provisionerv1.ContainerLayers{}
		for id := range found {
			cl := &provisionerv1.ContainerLayers{}
			if err := checkpoint.Read(a.layout.LayersFile(id), cl); err == nil {
				used[id] = cl
			}
		}
		return [2]interface{}{found, used}, nil
	}, func(v interface{}, err error) {
		if err != nil {
			ask.Respond(c, nil, fmt.Errorf("provisioner recovery: %w", err))
			return
		}
		pair := v.([2]interface{})
		found, used := pair[0].(map[string][]rootfsRef), pair[1].(map[string]*provisionerv1.ContainerLayers)
		resp := &provisionerv1.RecoverProvisionerResponse{}
		var unknown []string
		for id, refs := range found {
			if _, live := a.containers[id]; live {
				continue
			}
			a.containers[id] = &info{rootfses: refs, layers: used[id].GetPaths(), images: imagesOf(used[id])}
			if !known[id] {
				unknown = append(unknown, id)
			}
		}
		sort.Strings(unknown)
		var errs []string
		var next func(i int)
		next = func(i int) {
			if i == len(unknown) {
				a.recoverStores(c, resp, errs)
				return
			}
			id := unknown[i]
			a.o.Logger.Info("destroying the rootfses of an unknown container", zap.String("container", id))
			inf := a.containers[id]
			inf.destroyed = true
			a.destroyRootfses(c, id, inf.rootfses, func(err error) {
				delete(a.containers, id)
				if err != nil {
					errs = append(errs, err.Error())
				}
				resp.Destroyed = append(resp.Destroyed, &typesv1.ContainerID{Value: id})
				next(i + 1)
			})
		}
		next(0)
	})
}

func (a *Actor) recoverStores(c actor.Context, resp *provisionerv1.RecoverProvisionerResponse, errs []string) {
	types := a.storeTypes()
	var next func(i int)
	next = func(i int) {
		if i == len(types) {
			if len(errs) > 0 {
				ask.Respond(c, nil, fmt.Errorf("provisioner recovery: %s: %w", strings.Join(errs, "; "), errdefs.ErrInternal))
				return
			}
			ask.Respond(c, resp, nil)
			return
		}
		ask.Reenter(c, a.o.Stores[types[i]], &storev1.RecoverStoreRequest{}, a.o.StoreTimeout, func(r *storev1.RecoverStoreResponse, err error) {
			if err != nil {
				errs = append(errs, fmt.Sprintf("store %v: %v", types[i], err))
			} else if len(r.GetDropped()) > 0 {
				a.o.Logger.Warn("images dropped at recovery; they will be pulled again", zap.Strings("images", r.GetDropped()))
			}
			next(i + 1)
		})
	}
	next(0)
}

// onPrune prunes every store, keeping the layers of living containers. It
// waits for the provisions in flight: their images are not yet recorded.
func (a *Actor) onPrune(c actor.Context, m *provisionerv1.PruneImagesRequest) {
	if a.provisioning > 0 {
		a.deferredPrunes = append(a.deferredPrunes, deferredPrune{sender: c.Sender(), req: m})
		return
	}
	a.prune(c, c.Sender(), m)
}

// runDeferredPrunes runs the prunes that waited, once nothing is in flight.
func (a *Actor) runDeferredPrunes(c actor.Context) {
	if a.provisioning > 0 {
		return
	}
	pending := a.deferredPrunes
	a.deferredPrunes = nil
	for _, p := range pending {
		a.prune(c, p.sender, p.req)
	}
}

// prune asks every store to prune, one after the other, keeping the images
// and layers of every known container, and answers to with what they
// removed (appc images prefixed "appc:", as the CLI names them). A store
// that fails does not stop the others; the errors are joined.
func (a *Actor) prune(c actor.Context, to *actor.PID, m *provisionerv1.PruneImagesRequest) {
	var active []string
	excluded := append([]string(nil), m.GetExcluded()...)
	for _, inf := range a.containers {
		active = append(active, inf.layers...)
		excluded = append(excluded, inf.images...)
	}
	types := a.storeTypes()
	if len(types) == 0 {
		ask.Reply(c, to, nil, fmt.Errorf("no image store: %w", errdefs.ErrNotImplemented))
		return
	}
	resp := &provisionerv1.PruneImagesResponse{}
	var errs []error
	req := &storev1.PruneStoreRequest{Excluded: excluded, ActiveLayers: active}
	var next func(i int)
	next = func(i int) {
		if i == len(types) {
			ask.Reply(c, to, resp, errors.Join(errs...))
			return
		}
		ask.Reenter(c, a.o.Stores[types[i]], req, a.o.StoreTimeout, func(r *storev1.PruneStoreResponse, err error) {
			if err != nil {
				errs = append(errs, fmt.Errorf("store %v: %w", types[i], err))
			}
			prefix := ""
			if types[i] == typesv1.Image_TYPE_APPC {
				prefix = "appc:"
			}
			for _, ref := range r.GetRemovedImages() {
				resp.RemovedImages = append(resp.RemovedImages, prefix+ref)
			}
			resp.RemovedLayers = append(resp.RemovedLayers, r.GetRemovedLayers()...)
			resp.ReclaimedBytes += r.GetReclaimedBytes()
			next(i + 1)
		})
	}
	next(0)
}

// storeTypes returns the image types of the stores, in a fixed order.
func (a *Actor) storeTypes() []typesv1.Image_Type {
	types := make([]typesv1.Image_Type, 0, len(a.o.Stores))
	for t := range a.o.Stores {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	return types
}
