package backend

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/actors/ask"
	backendv1 "github.com/berthrt/berth/messages/backend/v1"
)

// Actor serves one Backend over backendv1 messages. Provisioning and
// destroying run off the mailbox, so one slow copy never blocks other
// requests; the Backend must be safe for concurrent use.
type Actor struct {
	b      Backend
	ctx    context.Context
	cancel context.CancelFunc
}

// Props returns the props of an actor serving b.
func Props(b Backend) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		ctx, cancel := context.WithCancel(context.Background())
		return &Actor{b: b, ctx: ctx, cancel: cancel}
	})
}

// Receive dispatches the messages.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Stopping:
		a.cancel()
	case *backendv1.ProvisionRootfsRequest:
		ask.Go(c, func() (proto.Message, error) {
			eph, err := a.b.Provision(a.ctx, m.GetLayers(), m.GetRootfs(), m.GetBackendDir())
			return &backendv1.ProvisionRootfsResponse{EphemeralVolumes: eph}, err
		})
	case *backendv1.DestroyRootfsRequest:
		ask.Go(c, func() (proto.Message, error) {
			existed, err := a.b.Destroy(a.ctx, m.GetRootfs(), m.GetBackendDir())
			return &backendv1.DestroyRootfsResponse{Existed: existed}, err
		})
	}
}
