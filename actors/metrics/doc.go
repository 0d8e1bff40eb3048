// Package metrics is an agent's instrumentation: the Prometheus collectors
// its HTTP endpoint serves, and the mechanics clock that splits a launch's
// time between the actors' messaging and the blocking work (syscalls,
// mounts, forks, disk) the actors hand to goroutines.
//
// Nothing here blocks or asks an actor: counters, gauges and histograms are
// atomic, and the clock is one short mutex section per blocking call.
//
// The mechanics clock. Every blocking call of the pipeline runs off the
// mailbox through ask.Go (the generic actor shells around backends,
// isolators, the launcher and the stores) or async.Run (checkpoints, sandbox
// and runtime dirs). Both wrap the call in Begin/End of the Metrics
// registered on the actor system (Register, Of), so the clock knows at any
// moment how long at least one mechanic has been running: Busy. The
// containerizer reads Busy when a launch starts and when it is answered
// (and likewise around a destroy); the difference is the launch's
// mechanics time, and the rest of the launch's wall time is messaging:
// mailbox queueing, dispatch, replies, and the actors' own bookkeeping.
// Calls that wait for an event rather than work (the wait for a
// container's exit, an isolator's watch) use ask.GoWait and are not
// counted. The split is exact while launches do not overlap (the
// benchmark); with concurrent launches one launch's window also sees the
// others' mechanics, so the mechanics share is an upper bound.
package metrics
