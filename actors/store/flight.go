package store

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/singleflight"
)

// Flights runs one call per key at a time and gives its result to every
// caller that asks meanwhile (Mesos: two containers pulling one image cause
// one pull). The call runs under its own context, cancelled only when every
// caller waiting for it has given up: one caller's cancellation (a
// container destroyed while provisioning) does not fail the others. The
// zero value is ready to use.
type Flights struct {
	group singleflight.Group
	mu    sync.Mutex
	runs  map[string]*flight
}

// flight is the context the callers of one key share.
type flight struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int
}

// Do calls fn once for the concurrent callers of key and returns its
// result, or ctx's error when ctx ends first.
func (f *Flights) Do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	for {
		run := f.join(ctx, key)
		ch := f.group.DoChan(key, func() (any, error) { return fn(run.ctx) })
		select {
		case r := <-ch:
			f.leave(key, run)
			// The run was cancelled because its other callers left; this
			// caller still wants the result, so it runs it again.
			if r.Err != nil && errors.Is(r.Err, context.Canceled) && ctx.Err() == nil {
				continue
			}
			return r.Val, r.Err
		case <-ctx.Done():
			// The last caller out cancels the run and waits for it, so no
			// work outlives every call.
			if f.leave(key, run) {
				<-ch
			}
			return nil, ctx.Err()
		}
	}
}

func (f *Flights) join(ctx context.Context, key string) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs == nil {
		f.runs = map[string]*flight{}
	}
	run := f.runs[key]
	if run == nil {
		c, cancel := context.WithCancel(context.WithoutCancel(ctx))
		run = &flight{ctx: c, cancel: cancel}
		f.runs[key] = run
	}
	run.waiters++
	return run
}

// leave drops a caller; the last one cancels the run and says so.
func (f *Flights) leave(key string, run *flight) bool {
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

// waiting returns how many callers wait for key's run (for tests).
func (f *Flights) waiting(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if run := f.runs[key]; run != nil {
		return run.waiters
	}
	return 0
}
