package isolator

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/actors/ask"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

// Actor serves one Isolator over isolatorv1 messages. Calls run off the
// mailbox; a Watch is cancelled by the container's Cleanup.
type Actor struct {
	iso    Isolator
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	// watches cancels the Watch of each container at Cleanup.
	watches map[string]context.CancelFunc
}

// Props returns the props of an actor serving iso.
func Props(iso Isolator) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		ctx, cancel := context.WithCancel(context.Background())
		return &Actor{iso: iso, ctx: ctx, cancel: cancel, watches: map[string]context.CancelFunc{}}
	})
}

func (a *Actor) stopWatch(id *typesv1.ContainerID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cancel, ok := a.watches[id.GetValue()]; ok {
		cancel()
		delete(a.watches, id.GetValue())
	}
}

// Receive dispatches the messages.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Stopping:
		a.cancel()
	case *isolatorv1.PrepareRequest:
		ask.Go(c, func() (proto.Message, error) {
			info, err := a.iso.Prepare(a.ctx, m.GetContainerId(), m.GetConfig())
			return &isolatorv1.PrepareResponse{LaunchInfo: info}, err
		})
	case *isolatorv1.IsolateRequest:
		ask.Go(c, func() (proto.Message, error) {
			return &isolatorv1.IsolateResponse{}, a.iso.Isolate(a.ctx, m.GetContainerId(), int(m.GetPid()))
		})
	case *isolatorv1.WatchRequest:
		wctx, cancel := context.WithCancel(a.ctx)
		a.stopWatch(m.GetContainerId())
		a.mu.Lock()
		a.watches[m.GetContainerId().GetValue()] = cancel
		a.mu.Unlock()
		ask.GoWait(c, func() (proto.Message, error) {
			lim, err := a.iso.Watch(wctx, m.GetContainerId())
			return &isolatorv1.WatchResponse{Limitation: lim}, err
		})
	case *isolatorv1.UpdateRequest:
		ask.Go(c, func() (proto.Message, error) {
			return &isolatorv1.UpdateResponse{}, a.iso.Update(a.ctx, m.GetContainerId(), m.GetResources(), m.GetLimits())
		})
	case *isolatorv1.UsageRequest:
		ask.Go(c, func() (proto.Message, error) {
			st, err := a.iso.Usage(a.ctx, m.GetContainerId())
			return &isolatorv1.UsageResponse{Statistics: st}, err
		})
	case *isolatorv1.StatusRequest:
		ask.Go(c, func() (proto.Message, error) {
			f, err := a.iso.Status(a.ctx, m.GetContainerId())
			return &isolatorv1.StatusResponse{Fields: f}, err
		})
	case *isolatorv1.CleanupRequest:
		a.stopWatch(m.GetContainerId())
		ask.Go(c, func() (proto.Message, error) {
			return &isolatorv1.CleanupResponse{}, a.iso.Cleanup(a.ctx, m.GetContainerId())
		})
	case *isolatorv1.RecoverIsolatorRequest:
		ask.Go(c, func() (proto.Message, error) {
			return &isolatorv1.RecoverIsolatorResponse{}, a.iso.Recover(a.ctx, m.GetContainers(), m.GetOrphans())
		})
	}
}
