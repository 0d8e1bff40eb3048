// Package async runs blocking work off an actor's mailbox goroutine and brings
// the result back onto it, the libprocess `defer` for plain Go functions.
//
//	async.Run(c, timeout, func() (any, error) { return nil, os.RemoveAll(dir) },
//		func(_ any, err error) { /* runs on the actor, like Receive */ })
//
// Only this package and the actor shells import protoactor; the work function
// must not touch the actor.Context.
package async

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/metrics"
	"github.com/berthrt/berth/process/errdefs"
)

// result travels from the worker goroutine to the future.
type result struct {
	val interface{}
	err error
}

// Run executes work in a goroutine and runs cont on the actor when it returns
// or when timeout passes (ask.Forever: never). cont sees the actor's context
// as it was for the message being handled, so ctx.Respond answers it.
// work's time counts as mechanics in the metrics registered on the actor
// system (package metrics).
func Run(c actor.Context, timeout time.Duration, work func() (interface{}, error), cont func(interface{}, error)) {
	sys := c.ActorSystem()
	f := actor.NewFuture(sys, timeout)
	m := metrics.Of(sys)
	go func() {
		start := m.Begin()
		val, err := work()
		m.End("async", start)
		sys.Root.Send(f.PID(), &result{val: val, err: err})
	}()
	c.ReenterAfter(f, func(res interface{}, err error) {
		if err != nil {
			cont(nil, fmt.Errorf("background work: no result in %v: %w", timeout, errdefs.ErrDeadlineExceeded))
			return
		}
		r, ok := res.(*result)
		if !ok {
			cont(nil, fmt.Errorf("background work: unexpected result %T: %w", res, errdefs.ErrInternal))
			return
		}
		cont(r.val, r.err)
	})
}
