package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/metrics"
)

// BenchmarkLaunchActorOverhead launches /bin/true containers from the
// built-in image through an in-process agent, one after the other, each to
// its end (launch, exit, destroy), and splits the pipeline's time between
// messaging (mailboxes, dispatch, replies, the actors' own logic) and
// mechanics (the blocking calls: store lookup, mount, checkpoints, fork,
// exec, kill, cleanup, unmount), as the containerizer measures them on the
// mechanics clock (package metrics). ns/op is the whole lifecycle seen by
// the client. Needs root.
func BenchmarkLaunchActorOverhead(b *testing.B) {
	m := metrics.New(metrics.Options{NoProcessCollectors: true})
	ag := startAgent(b, agent.Options{Metrics: m})
	// The first launch builds the built-in image; it is not measured.
	runToEnd(b, ag, "berth-test-warm", "/bin/true")
	before := m.Totals()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if term := runToEnd(b, ag, fmt.Sprintf("berth-test-o%d", i), "/bin/true"); term.GetExitCode() != 0 {
			b.Fatalf("launch %d: %v", i, term)
		}
	}
	b.StopTimer()
	after := m.Totals()
	n := float64(b.N)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 / n }
	launchMsg, launchMech := after.LaunchMessaging-before.LaunchMessaging, after.LaunchMechanics-before.LaunchMechanics
	msg := launchMsg + after.DestroyMessaging - before.DestroyMessaging
	mech := launchMech + after.DestroyMechanics - before.DestroyMechanics
	b.ReportMetric(us(msg), "messaging-us/op")
	b.ReportMetric(us(mech), "mechanics-us/op")
	if msg+mech > 0 {
		b.ReportMetric(100*float64(msg)/float64(msg+mech), "messaging-%")
	}
	b.ReportMetric(us(launchMsg), "launch-messaging-us/op")
	b.ReportMetric(us(launchMech), "launch-mechanics-us/op")
	if launchMsg+launchMech > 0 {
		b.ReportMetric(100*float64(launchMsg)/float64(launchMsg+launchMech), "launch-messaging-%")
	}
}
