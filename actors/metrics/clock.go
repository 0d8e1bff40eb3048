package metrics

import (
	"sync"
	"time"
)

// Clock accumulates the time during which at least one mechanic runs.
type Clock struct {
	now      func() time.Time
	mu       sync.Mutex
	inFlight int
	since    time.Time
	busy     time.Duration
}

// NewClock returns a clock reading now (nil: time.Now, whose monotonic
// reading makes the durations immune to wall-clock steps).
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return c.now() }

// Begin marks a mechanic as started and returns its start time.
func (c *Clock) Begin() time.Time {
	t := c.now()
	c.mu.Lock()
	if c.inFlight == 0 {
		c.since = t
	}
	c.inFlight++
	c.mu.Unlock()
	return t
}

// End marks a mechanic begun at start as finished and returns its duration.
func (c *Clock) End(start time.Time) time.Duration {
	t := c.now()
	c.mu.Lock()
	c.inFlight--
	if c.inFlight == 0 {
		c.busy += t.Sub(c.since)
	}
	c.mu.Unlock()
	return t.Sub(start)
}

// Mark is a point on the clock: the time and the busy total then.
type Mark struct {
	At   time.Time
	Busy time.Duration
}

// Mark reads the clock: now, and the total time up to now during which at
// least one mechanic ran.
func (c *Clock) Mark() Mark {
	t := c.now()
	c.mu.Lock()
	b := c.busy
	if c.inFlight > 0 {
		b += t.Sub(c.since)
	}
	c.mu.Unlock()
	return Mark{At: t, Busy: b}
}

// Split returns the wall time since m and how much of it mechanics ran.
func (c *Clock) Split(m Mark) (total, mechanics time.Duration) {
	now := c.Mark()
	total, mechanics = now.At.Sub(m.At), now.Busy-m.Busy
	if mechanics > total {
		mechanics = total
	}
	return total, mechanics
}
