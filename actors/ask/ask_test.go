package ask_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/ask"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// echo answers a ContainerID with itself, and fails ids named "missing".
func echo(c actor.Context) {
	if m, ok := c.Message().(*typesv1.ContainerID); ok {
		switch m.GetValue() {
		case "missing":
			ask.Respond(c, nil, fmt.Errorf("container %q: %w", m.GetValue(), errdefs.ErrNotFound))
		case "silent":
		default:
			ask.Respond(c, m, nil)
		}
	}
}

func TestRequestTypedReplyAndErrorClass(t *testing.T) {
	t.Parallel()
	sys := actortest.NewSystem(t)
	pid := sys.Root.Spawn(actor.PropsFromFunc(echo))
	ctx := context.Background()

	got, err := ask.Request[*typesv1.ContainerID](ctx, sys.Root, pid, &typesv1.ContainerID{Value: "c1"}, time.Second)
	if err != nil || got.GetValue() != "c1" {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = ask.Request[*typesv1.ContainerID](ctx, sys.Root, pid, &typesv1.ContainerID{Value: "missing"}, time.Second)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("want not found, got %v", err)
	}
	_, err = ask.Request[*typesv1.Status](ctx, sys.Root, pid, &typesv1.ContainerID{Value: "c1"}, time.Second)
	if !errdefs.IsInternal(err) {
		t.Fatalf("wrong reply type must be internal, got %v", err)
	}
	_, err = ask.Request[*typesv1.ContainerID](ctx, sys.Root, pid, &typesv1.ContainerID{Value: "silent"}, 50*time.Millisecond)
	if !errdefs.IsDeadlineExceeded(err) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ask.Request[*typesv1.ContainerID](cctx, sys.Root, pid, &typesv1.ContainerID{Value: "silent"}, time.Second)
	if !errdefs.IsCanceled(err) {
		t.Fatalf("want canceled, got %v", err)
	}
}

func TestRequestToStoppedActorIsUnavailable(t *testing.T) {
	t.Parallel()
	sys := actortest.NewSystem(t)
	pid := sys.Root.Spawn(actor.PropsFromFunc(echo))
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	_, err := ask.Request[*typesv1.ContainerID](context.Background(), sys.Root, pid, &typesv1.ContainerID{Value: "c"}, time.Second)
	if !errdefs.IsUnavailable(err) {
		t.Fatalf("want unavailable, got %v", err)
	}
}

func TestReenterRunsContinuationOnActor(t *testing.T) {
	t.Parallel()
	sys := actortest.NewSystem(t)
	target := sys.Root.Spawn(actor.PropsFromFunc(echo))
	// The forwarder asks target from inside Receive and answers its own caller
	// from the continuation: ctx.Respond must reach the original requester.
	fwd := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*typesv1.ContainerID); ok {
			ask.Reenter(c, target, m, time.Second, func(r *typesv1.ContainerID, err error) {
				ask.Respond(c, &typesv1.ContainerID{Value: "via-" + r.GetValue()}, err)
			})
		}
	}))
	got, err := ask.Request[*typesv1.ContainerID](context.Background(), sys.Root, fwd, &typesv1.ContainerID{Value: "x"}, time.Second)
	if err != nil || got.GetValue() != "via-x" {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = ask.Request[*typesv1.ContainerID](context.Background(), sys.Root, fwd, &typesv1.ContainerID{Value: "missing"}, time.Second)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("class lost through reenter: %v", err)
	}
}
