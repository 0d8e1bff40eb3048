package store

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/singleflight"
)

// Flights runs one call per key at a time and hands its result to every
// caller that asked meanwhile (Mesos's "pulling the same image
// simultaneously pulls once"). The run has its own context, cancelled only
// when every caller waiting for it has given up (Mesos: one discard does not
// cancel the pull; all discarded cancel it). The progress the run reports
// (WithProgress in its context) goes to every caller waiting for it,
// and a caller that joins late first gets the latest event of each layer.
type Flights struct {
	group singleflight.Group
	mu    sync.Mutex
	runs  map[string]*flightRun
}

// flightRun is the context shared by the callers of one key.
type flightRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int
	fan     progressFan
}

// Do calls fn once for all concurrent callers of key and returns its
// result, or ctx's error when ctx ends first. The zero value is ready.
func (f *Flights) Do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	for {
		run, sub := f.join(ctx, key)
		ch := f.group.DoChan(key, func() (any, error) { return fn(run.ctx) })
		select {
		case r := <-ch:
			f.leave(key, run, sub)
			// A run that its other callers abandoned ended cancelled; this
			// caller still wants the result, so it starts another.
			if r.Err != nil && errors.Is(r.Err, context.Canceled) && ctx.Err() == nil {
				continue
			}
			return r.Val, r.Err
		case <-ctx.Done():
			// The last caller out cancels the run and waits for it to
			// stop, so that no work it started outlives the call.
			if f.leave(key, run, sub) {
				<-ch
			}
			return nil, ctx.Err()
		}
	}
}

// join registers a caller of key, and its progress sink with the run, and
// returns the run and the caller's subscription.
func (f *Flights) join(ctx context.Context, key string) (*flightRun, int) {
	run := f.register(ctx, key)
	// Outside f.mu: the replay calls the caller's sink.
	return run, run.fan.subscribe(ProgressFrom(ctx))
}

// register counts a caller of key in, starting a run when none is on.
func (f *Flights) register(ctx context.Context, key string) *flightRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs == nil {
		f.runs = map[string]*flightRun{}
	}
	run := f.runs[key]
	if run == nil {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		run = &flightRun{cancel: cancel}
		run.ctx = WithProgress(rctx, run.fan.emit)
		f.runs[key] = run
	}
	run.waiters++
	return run
}

// leave unregisters a caller; the last one out cancels the run's context
// and reports it.
func (f *Flights) leave(key string, run *flightRun, sub int) bool {
	run.fan.unsubscribe(sub)
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

// progressFan hands the progress events of one run to the sinks of the
// callers waiting for it, and remembers the latest event of each layer so
// that a caller joining late starts from where every layer stands.
type progressFan struct {
	mu     sync.Mutex
	next   int
	subs   map[int]ProgressFunc
	latest []Progress
	index  map[string]int // layer id → position in latest
}

// subscribe adds a sink (nil: none) after replaying the latest events to
// it, and returns its subscription (0 for none).
func (p *progressFan) subscribe(fn ProgressFunc) int {
	if fn == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.latest {
		fn(e)
	}
	if p.subs == nil {
		p.subs = map[int]ProgressFunc{}
	}
	p.next++
	p.subs[p.next] = fn
	return p.next
}

func (p *progressFan) unsubscribe(sub int) {
	if sub == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.subs, sub)
}

// emit records an event and hands it to every sink, in the order events
// are emitted (the lock keeps one layer's events in order for each sink).
func (p *progressFan) emit(e Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index == nil {
		p.index = map[string]int{}
	}
	if i, ok := p.index[e.LayerID]; ok {
		p.latest[i] = e
	} else {
		p.index[e.LayerID] = len(p.latest)
		p.latest = append(p.latest, e)
	}
	for _, fn := range p.subs {
		fn(e)
	}
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
