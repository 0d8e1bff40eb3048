package ask

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/actors/metrics"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// Forever is a timeout that never expires; use it for requests that complete
// only when something happens (wait for a container).
const Forever = time.Duration(-1)

// Requester is what can send a request: the root context or an actor context.
type Requester interface {
	RequestFuture(pid *actor.PID, message interface{}, timeout time.Duration) *actor.Future
}

// Request sends req to pid and waits for the reply, the timeout, or ctx. A
// deadline on ctx shortens the timeout.
func Request[Resp proto.Message](ctx context.Context, r Requester, pid *actor.PID, req proto.Message, timeout time.Duration) (Resp, error) {
	var zero Resp
	if pid == nil {
		return zero, fmt.Errorf("request %s: no target actor: %w", name(req), errdefs.ErrUnavailable)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return zero, fmt.Errorf("request %s to %s: %w", name(req), pid.Id, errdefs.ErrDeadlineExceeded)
		}
		if timeout < 0 || left < timeout {
			timeout = left
		}
	}
	f := r.RequestFuture(pid, req, timeout)
	if ctx.Done() == nil {
		res, err := f.Result()
		return Decode[Resp](pid, req, res, err)
	}
	type result struct {
		res interface{}
		err error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := f.Result()
		ch <- result{res, err}
	}()
	select {
	case out := <-ch:
		return Decode[Resp](pid, req, out.res, out.err)
	case <-ctx.Done():
		return zero, fmt.Errorf("request %s to %s: %w", name(req), pid.Id, ctx.Err())
	}
}

// Reenter sends req from inside an actor and runs cont on that actor, with the
// actor's context restored to the message being handled, when the reply (or
// the timeout) arrives. The actor keeps processing other messages meanwhile.
func Reenter[Resp proto.Message](c actor.Context, pid *actor.PID, req proto.Message, timeout time.Duration, cont func(Resp, error)) {
	if pid == nil {
		var zero Resp
		cont(zero, fmt.Errorf("request %s: no target actor: %w", name(req), errdefs.ErrUnavailable))
		return
	}
	f := c.RequestFuture(pid, req, timeout)
	c.ReenterAfter(f, func(res interface{}, err error) {
		cont(Decode[Resp](pid, req, res, err))
	})
}

// Decode turns a future's outcome into a typed response or a classified error.
func Decode[Resp proto.Message](pid *actor.PID, req proto.Message, res interface{}, err error) (Resp, error) {
	var zero Resp
	target := "<nil>"
	if pid != nil {
		target = pid.Id
	}
	if err != nil {
		switch {
		case errors.Is(err, actor.ErrTimeout):
			return zero, fmt.Errorf("request %s to %s: no reply in time: %w", name(req), target, errdefs.ErrDeadlineExceeded)
		case errors.Is(err, actor.ErrDeadLetter):
			return zero, fmt.Errorf("request %s to %s: actor is gone: %w", name(req), target, errdefs.ErrUnavailable)
		}
		return zero, fmt.Errorf("request %s to %s: %v: %w", name(req), target, err, errdefs.ErrInternal)
	}
	switch m := res.(type) {
	case Resp:
		return m, nil
	case *typesv1.Status:
		if e := errdefs.FromStatus(m); e != nil {
			return zero, e
		}
		return zero, fmt.Errorf("request %s to %s: OK status instead of %T: %w", name(req), target, zero, errdefs.ErrInternal)
	case *actor.DeadLetterResponse:
		return zero, fmt.Errorf("request %s to %s: actor is gone: %w", name(req), target, errdefs.ErrUnavailable)
	}
	return zero, fmt.Errorf("request %s to %s: unexpected reply %T, want %T: %w", name(req), target, res, zero, errdefs.ErrInternal)
}

// Respond answers the message being handled: resp on success, else a Status
// carrying err's class.
func Respond(c actor.Context, resp proto.Message, err error) {
	if c.Sender() == nil {
		return
	}
	if err != nil {
		c.Respond(errdefs.ToStatus(err))
		return
	}
	c.Respond(resp)
}

// Reply answers to an explicit sender recorded earlier (the pattern for replies
// that come after other messages were handled).
func Reply(s actor.SenderContext, to *actor.PID, resp proto.Message, err error) {
	if to == nil {
		return
	}
	if err != nil {
		s.Send(to, errdefs.ToStatus(err))
		return
	}
	s.Send(to, resp)
}

func name(m proto.Message) string {
	if m == nil {
		return "<nil>"
	}
	return string(m.ProtoReflect().Descriptor().Name())
}

// Go answers the message being handled from a goroutine: fn runs off the
// mailbox (it may block) and its result goes straight to the requester. The
// actor.Context is read here, on the mailbox goroutine, never inside fn.
// fn is work (a mechanic): its time goes to the metrics registered on the
// actor system (package metrics), by the name of the request.
func Go(c actor.Context, fn func() (proto.Message, error)) {
	sender := c.Sender()
	sys := c.ActorSystem()
	m := metrics.Of(sys)
	request := "unknown"
	if pm, ok := c.Message().(proto.Message); ok {
		request = name(pm)
	}
	go func() {
		start := m.Begin()
		resp, err := fn()
		m.End(request, start)
		Reply(sys.Root, sender, resp, err)
	}()
}

// GoWait is Go for a call that waits for an event rather than works (a
// container's exit, a limitation): its time is not counted as mechanics.
func GoWait(c actor.Context, fn func() (proto.Message, error)) {
	sender := c.Sender()
	root := c.ActorSystem().Root
	go func() {
		resp, err := fn()
		Reply(root, sender, resp, err)
	}()
}
