package containerizer

import (
	"strings"

	"github.com/berthrt/berth/actors/metrics"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// observed is a container's instrumentation: when its launch, its current
// state and its destroy began, on the metrics' mechanics clock.
type observed struct {
	// counted: the container is in the containers gauge.
	counted                bool
	launch, state, destroy metrics.Mark
}

// observe follows a transition in the metrics: the containers gauge, the
// time spent in the launch phase left, and the start of a destroy.
func (a *Actor) observe(e *entry, before, after State) {
	m := a.o.Metrics
	if m == nil {
		return
	}
	if !e.obs.counted {
		e.obs.counted = true
		e.obs.state = m.Mark()
		m.StateChange("", before.String())
	}
	if after == before {
		return
	}
	now := m.Mark()
	switch {
	case after == Destroying:
		e.obs.destroy = now
	case before == Provisioning, before == Preparing, before == Isolating, before == Fetching:
		// A phase completed (one cut short by a destroy is not counted).
		m.Phase(before.String(), now.At.Sub(e.obs.state.At))
	}
	e.obs.state = now
	m.StateChange(before.String(), after.String())
}

// observeLaunch records the launch's answer.
func (a *Actor) observeLaunch(e *entry, err error) {
	m := a.o.Metrics
	if m == nil {
		return
	}
	total, mech := m.Clock().Split(e.obs.launch)
	m.Launched(outcome(err), total, mech)
}

// observeEnd records the destroy and takes the container out of the gauge.
func (a *Actor) observeEnd(e *entry, term *typesv1.Termination) {
	m := a.o.Metrics
	if m == nil || !e.obs.counted {
		return
	}
	m.StateChange(e.c.State.String(), "")
	e.obs.counted = false
	if e.obs.destroy.At.IsZero() {
		return
	}
	total, mech := m.Clock().Split(e.obs.destroy)
	result := "ok"
	if len(term.GetCleanupErrors()) > 0 {
		result = "cleanup_failed"
	}
	reason := strings.ToLower(strings.TrimPrefix(term.GetReason().String(), "REASON_"))
	m.Destroyed(reason, result, total, mech)
}

// outcome labels a launch: ok, or the class of its error.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.ToLower(strings.TrimPrefix(errdefs.Code(err).String(), "CODE_"))
}
