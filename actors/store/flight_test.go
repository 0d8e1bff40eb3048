package store

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestFlightsCoalesceAndSurviveOneCancel(t *testing.T) {
	var f Flights
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	fn := func(ctx context.Context) (any, error) {
		runs.Add(1)
		started <- struct{}{}
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	quitter, quit := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	results := make([]any, 3)
	errs := make([]error, 3)
	for i := range 3 {
		ctx := context.Background()
		if i == 0 {
			ctx = quitter
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.Do(ctx, "k", fn)
		}()
	}
	<-started
	// Every caller joins the run before one gives up and it ends.
	for f.waiting("k") < 3 {
		runtime.Gosched()
	}
	quit()
	close(release)
	wg.Wait()
	if !errors.Is(errs[0], context.Canceled) {
		t.Errorf("the caller that gave up: %v", errs[0])
	}
	for i := 1; i < 3; i++ {
		if errs[i] != nil || results[i] != "done" {
			t.Errorf("caller %d: %v %v", i, results[i], errs[i])
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
}

func TestFlightsCancelWhenAllLeave(t *testing.T) {
	var f Flights
	stopped := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := f.Do(ctx, "k", func(c context.Context) (any, error) {
			cancel()
			<-c.Done()
			stopped <- c.Err()
			return nil, c.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
	}()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("the run was not cancelled: %v", err)
	}
}
