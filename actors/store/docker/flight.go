package docker

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/singleflight"
)

// flights runs one call per key at a time and hands its result to every
// caller that asked meanwhile (Mesos's "pulling the same image
// simultaneously pulls once"). The run has its own context, cancelled only
// when every caller waiting for it has given up (Mesos: one discard does not
// cancel the pull; all discarded cancel it).
type flights struct {
	group singleflight.Group
	mu    sync.Mutex
	runs  map[string]*flightRun
}

// flightRun is the context shared by the callers of one key.
type flightRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int
}

// do calls fn once for all concurrent callers of key.
func (f *flights) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	for {
		run := f.join(ctx, key)
		ch := f.group.DoChan(key, func() (any, error) { return fn(run.ctx) })
		select {
		case r := <-ch:
			f.leave(key, run)
			// A run that its other callers abandoned ended cancelled; this
			// caller still wants the result, so it starts another.
			if r.Err != nil && errors.Is(r.Err, context.Canceled) && ctx.Err() == nil {
				continue
			}
			return r.Val, r.Err
		case <-ctx.Done():
			// The last caller out cancels the run and waits for it to
			// stop, so that no work it started outlives the call.
			if f.leave(key, run) {
				<-ch
			}
			return nil, ctx.Err()
		}
	}
}

// join registers a caller of key and returns the run's context.
func (f *flights) join(ctx context.Context, key string) *flightRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs == nil {
		f.runs = map[string]*flightRun{}
	}
	run := f.runs[key]
	if run == nil {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		run = &flightRun{ctx: rctx, cancel: cancel}
		f.runs[key] = run
	}
	run.waiters++
	return run
}

// leave unregisters a caller; the last one out cancels the run's context
// and reports it.
func (f *flights) leave(key string, run *flightRun) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	run.waiters--
	if run.waiters > 0 {
		return false
	}
	run.cancel()
	if f.runs[key] == run {
		delete(f.runs, key)
	}
	return true
}
