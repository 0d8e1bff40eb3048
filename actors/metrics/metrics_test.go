package metrics_test

import (
	"testing"
	"time"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/metrics"
)

// fakeTime is a clock the test moves by hand.
type fakeTime struct{ t time.Time }

func (f *fakeTime) now() time.Time      { return f.t }
func (f *fakeTime) add(d time.Duration) { f.t = f.t.Add(d) }
func ms(n int) time.Duration            { return time.Duration(n) * time.Millisecond }

// TestClockCountsOverlapOnce: two mechanics that overlap count as busy
// once; the time when none runs is not busy.
func TestClockCountsOverlapOnce(t *testing.T) {
	f := &fakeTime{t: time.Unix(1000, 0)}
	c := metrics.NewClock(f.now)
	start := c.Mark()
	f.add(ms(2)) // messaging: 2 ms
	a := c.Begin()
	f.add(ms(3))
	b := c.Begin() // overlaps a
	f.add(ms(4))
	if d := c.End(a); d != ms(7) {
		t.Errorf("a took %v; want 7ms", d)
	}
	f.add(ms(1))
	mid := c.Mark()
	if got := mid.Busy - start.Busy; got != ms(8) {
		t.Errorf("busy while b still runs = %v; want 8ms", got)
	}
	if d := c.End(b); d != ms(5) {
		t.Errorf("b took %v; want 5ms", d)
	}
	f.add(ms(5)) // messaging: 5 ms
	total, mech := c.Split(start)
	if total != ms(15) || mech != ms(8) {
		t.Errorf("split = %v total, %v mechanics; want 15ms, 8ms", total, mech)
	}
}

// TestNilMetricsRecordNothing: components built without metrics call the
// same methods.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.End("x", m.Begin())
	m.StateChange("", "RUNNING")
	m.Phase("PREPARING", time.Second)
	m.Launched("ok", time.Second, time.Millisecond)
	m.Destroyed("destroyed", "ok", time.Second, time.Millisecond)
	m.SetImageStats(func() (int64, int64) { return 1, 1 })
	if m.Containers() != 0 || m.Totals() != (metrics.Totals{}) || m.Clock() != nil || m.Mark() != (metrics.Mark{}) {
		t.Error("a nil Metrics reported something")
	}
	if metrics.Of(nil) != nil {
		t.Error("Of(nil) is not nil")
	}
}

func TestMetricsTotalsAndRegistration(t *testing.T) {
	m := metrics.New(metrics.Options{NoProcessCollectors: true})
	m.StateChange("", "STARTING")
	m.StateChange("STARTING", "RUNNING")
	m.Launched("ok", ms(10), ms(9))
	m.Launched("invalid_argument", ms(1), 0)
	m.Destroyed("command_exited", "ok", ms(4), ms(3))
	if m.Containers() != 1 {
		t.Errorf("containers = %d; want 1", m.Containers())
	}
	m.StateChange("RUNNING", "")
	if m.Containers() != 0 {
		t.Errorf("containers = %d after leaving; want 0", m.Containers())
	}
	want := metrics.Totals{Launches: 2, Destroys: 1, LaunchMechanics: ms(9), LaunchMessaging: ms(2), DestroyMechanics: ms(3), DestroyMessaging: ms(1)}
	if got := m.Totals(); got != want {
		t.Errorf("totals = %+v; want %+v", got, want)
	}
	sys := actortest.NewSystem(t)
	if metrics.Of(sys) != nil {
		t.Error("a fresh system has metrics")
	}
	metrics.Register(sys, m)
	if metrics.Of(sys) != m {
		t.Error("Of does not return the registered metrics")
	}
	if _, err := m.Registry.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}
