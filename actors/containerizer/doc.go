// Package containerizer holds the containerizer actor (Mesos's
// MesosContainerizerProcess): the table of containers and the launch and
// destroy pipelines that drive the provisioner, the isolators, the launcher and
// the fetcher.
//
// The pipelines are a pure state machine (state.go: Next maps a container and
// an event to the new container and the effects to carry out) that is
// table-tested without actors; the actor (actor.go) executes the effects by
// sending messages and turns the replies back into events. Receive never
// blocks: disk I/O runs through actors/async and every reply comes back
// through ask.Reenter.
//
// Launch: PROVISIONING → PREPARING (each isolator in order, then the fork) →
// ISOLATING → FETCHING (then the exec) → RUNNING. Destroy from any state:
// DESTROYING waits for the step in flight (or kills a fetch), kills the
// processes, waits for the init to be reaped, cleans up the isolators in
// reverse order, destroys the rootfs, removes the runtime directory and
// answers every waiter with the Termination. docs/state-machine.md draws it.
//
// Checkpoints, under <runtime_dir>/containers/<id>/:
//
//	config   containerizerv1.Checkpoint, written before the fork
//	pid      launcherv1.ProcessCheckpoint, written after the fork
//	status   the command's wait status, written by the container's init
package containerizer
