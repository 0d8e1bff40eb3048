package containerizer

import (
	"errors"
	"fmt"
	"syscall"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// State is a container's place in the launch and destroy pipelines; it mirrors
// containerizerv1.ContainerState.
type State uint8

// The states, in pipeline order. Starting is never observable: Launch moves a
// container to Provisioning (or Preparing, without an image) at once.
const (
	Starting State = iota
	Provisioning
	Preparing
	Isolating
	Fetching
	Running
	Destroying
	Terminated
)

var stateNames = [...]string{"STARTING", "PROVISIONING", "PREPARING", "ISOLATING", "FETCHING", "RUNNING", "DESTROYING", "TERMINATED"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// Step is the one action in flight for a container. Every action has its own
// step, so the state says exactly what the container waits for (libprocess's
// rule: an action gets an intermediate state).
type Step uint8

// The steps. The launch steps run in the state named beside them; the destroy
// steps all run in Destroying.
const (
	StepNone          Step = iota
	StepProvision          // Provisioning: the provisioner builds the rootfs
	StepPrepare            // Preparing: isolator Prepared is preparing
	StepFork               // Preparing: the launcher forks the init, blocked
	StepIsolate            // Isolating: every isolator isolates the init
	StepFetch              // Fetching: the fetcher fetches the URIs
	StepExec               // Fetching: the launcher releases the init to exec
	StepKill               // Destroying: the launcher kills every process
	StepAwaitExit          // Destroying: waiting for the init to be reaped
	StepCleanup            // Destroying: isolators clean up, in reverse order
	StepDestroyRootfs      // Destroying: the provisioner destroys the rootfses
	StepRemoveRuntime      // Destroying: the runtime dir (checkpoints) is removed
)

var stepNames = [...]string{"none", "provision", "prepare", "fork", "isolate", "fetch", "exec", "kill", "await-exit", "cleanup", "destroy-rootfs", "remove-runtime"}

func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("Step(%d)", s)
}

// Exit is how the container's command ended.
type Exit struct {
	WaitStatus syscall.WaitStatus
	// Known is false when no status could be learned.
	Known bool
}

// Container is the pure state of one container. The actor keeps one per
// container and changes it only through Next.
type Container struct {
	State State
	// InFlight is the step whose completion the container waits for.
	InFlight Step
	// Isolators is the number of isolators; Prepared how many have prepared.
	Isolators int
	Prepared  int
	// HasImage is true when a rootfs is provisioned.
	HasImage bool
	// Forked is true once the init exists; Started once the command was
	// exec'd; Exited once the init has been reaped.
	Forked  bool
	Started bool
	Exited  bool
	Exit    Exit
	// LaunchAnswered is true once the launch request got its reply.
	LaunchAnswered bool
	// Recovered is true for containers rebuilt from checkpoints.
	Recovered bool
	// Destroy is set from the moment the container starts destroying.
	Destroy *Destroy
}

// Destroy is the destroy in progress.
type Destroy struct {
	// From is the state the container was in when the destroy began.
	From State
	// Reason, Message and Err say why the container ends (the first cause wins).
	Reason  typesv1.Termination_Reason
	Message string
	Err     error
	// Limitation is set when an isolator's limitation caused the destroy.
	Limited []string
	// FailedStep is the launch step whose failure caused the destroy.
	FailedStep Step
	// InitDied is true when the destroy began because the init exited during
	// the launch; the error of the step in flight, when it arrives, is more
	// precise and replaces the generic one.
	InitDied bool
	// CleanupErrors are destroy steps that failed; the destroy went on.
	CleanupErrors []string
}

// Event is something that happened to a container.
type Event interface{ event() string }

// The events. Err fields carry the failure of the step, nil on success.
type (
	// EvLaunch starts the pipeline.
	EvLaunch struct {
		HasImage  bool
		Isolators int
	}
	// EvProvisioned: the provisioner answered.
	EvProvisioned struct{ Err error }
	// EvPrepared: isolator Index answered its prepare.
	EvPrepared struct {
		Index int
		Err   error
	}
	// EvForked: the launcher answered the fork.
	EvForked struct{ Err error }
	// EvIsolated: every isolator answered its isolate (Err is the first failure).
	EvIsolated struct{ Err error }
	// EvFetched: the fetcher answered.
	EvFetched struct{ Err error }
	// EvExeced: the launcher released the init; the command runs (or failed to start).
	EvExeced struct{ Err error }
	// EvExited: the init was reaped.
	EvExited struct{ Exit Exit }
	// EvDestroy asks to destroy the container (a request, or a failure).
	EvDestroy struct {
		Reason  typesv1.Termination_Reason
		Message string
		Err     error
	}
	// EvLimited: an isolator reported a limitation.
	EvLimited struct {
		Resources []string
		Message   string
	}
	// EvKilled: the launcher answered the destroy of the processes.
	EvKilled struct{ Err error }
	// EvCleanedUp: every isolator answered its cleanup.
	EvCleanedUp struct{ Errs []error }
	// EvRootfsDestroyed: the provisioner answered the destroy.
	EvRootfsDestroyed struct{ Err error }
	// EvRuntimeRemoved: the runtime dir is gone.
	EvRuntimeRemoved struct{ Err error }
	// EvRecovered: the container was rebuilt from its checkpoint, its init alive or not.
	EvRecovered struct{ Isolators int }
)

func (EvLaunch) event() string          { return "launch" }
func (EvProvisioned) event() string     { return "provisioned" }
func (EvPrepared) event() string        { return "prepared" }
func (EvForked) event() string          { return "forked" }
func (EvIsolated) event() string        { return "isolated" }
func (EvFetched) event() string         { return "fetched" }
func (EvExeced) event() string          { return "execed" }
func (EvExited) event() string          { return "exited" }
func (EvDestroy) event() string         { return "destroy" }
func (EvLimited) event() string         { return "limited" }
func (EvKilled) event() string          { return "killed" }
func (EvCleanedUp) event() string       { return "cleaned-up" }
func (EvRootfsDestroyed) event() string { return "rootfs-destroyed" }
func (EvRuntimeRemoved) event() string  { return "runtime-removed" }
func (EvRecovered) event() string       { return "recovered" }

// Effect is an action the actor must carry out.
type Effect interface{ effect() string }

// The effects.
type (
	// DoProvision asks the provisioner for the rootfs.
	DoProvision struct{}
	// DoPrepare asks isolator Index to prepare.
	DoPrepare struct{ Index int }
	// DoFork checkpoints the config, asks the launcher to fork and checkpoints the pid.
	DoFork struct{}
	// DoWatchExit starts waiting for the init's exit (once per container).
	DoWatchExit struct{}
	// DoIsolate asks every isolator to isolate the init, together, and to watch it.
	DoIsolate struct{}
	// DoFetch asks the fetcher for the URIs.
	DoFetch struct{}
	// DoKillFetch aborts a fetch in flight.
	DoKillFetch struct{}
	// DoExec releases the init.
	DoExec struct{}
	// DoAnswerLaunch answers the launch request (Err nil: the command runs).
	DoAnswerLaunch struct{ Err error }
	// DoKill asks the launcher to kill every process of the container.
	DoKill struct{}
	// DoCleanup asks every isolator to clean up, in reverse order.
	DoCleanup struct{}
	// DoDestroyRootfs asks the provisioner to destroy the container's rootfses.
	DoDestroyRootfs struct{}
	// DoRemoveRuntime removes the runtime dir with its checkpoints.
	DoRemoveRuntime struct{}
	// DoComplete answers every waiter with the termination and forgets the container.
	DoComplete struct{ Termination *typesv1.Termination }
)

func (DoProvision) effect() string     { return "provision" }
func (DoPrepare) effect() string       { return "prepare" }
func (DoFork) effect() string          { return "fork" }
func (DoWatchExit) effect() string     { return "watch-exit" }
func (DoIsolate) effect() string       { return "isolate" }
func (DoFetch) effect() string         { return "fetch" }
func (DoKillFetch) effect() string     { return "kill-fetch" }
func (DoExec) effect() string          { return "exec" }
func (DoAnswerLaunch) effect() string  { return "answer-launch" }
func (DoKill) effect() string          { return "kill" }
func (DoCleanup) effect() string       { return "cleanup" }
func (DoDestroyRootfs) effect() string { return "destroy-rootfs" }
func (DoRemoveRuntime) effect() string { return "remove-runtime" }
func (DoComplete) effect() string      { return "complete" }

// TransitionError is an event that is illegal in the container's state.
type TransitionError struct {
	State State
	Step  Step
	Event string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("container in %s (step %s): illegal event %s", e.State, e.Step, e.Event)
}

// Unwrap classifies the error: an illegal transition is a failed precondition.
func (e *TransitionError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// Next is the transition function: from the container and an event, the new
// container, the effects to carry out, or a *TransitionError. It does no I/O.
func Next(c Container, ev Event) (Container, []Effect, error) {
	illegal := func() (Container, []Effect, error) {
		return c, nil, &TransitionError{State: c.State, Step: c.InFlight, Event: ev.event()}
	}
	if c.State == Terminated {
		return illegal()
	}
	// Destroy requests and limitations are legal in every live state.
	switch e := ev.(type) {
	case EvDestroy:
		return beginDestroy(c, e.Reason, e.Message, e.Err, nil)
	case EvLimited:
		if c.State == Destroying {
			if c.Destroy.Reason == typesv1.Termination_REASON_COMMAND_EXITED && c.Destroy.Limited == nil {
				// The limitation is why the command exited (the OOM
				// killer's victim was the command, and the news of its
				// exit came first): it is the cause the user wants.
				c.Destroy.Reason, c.Destroy.Message, c.Destroy.Limited = typesv1.Termination_REASON_LIMITATION, e.Message, e.Resources
			}
			return c, nil, nil // else too late to matter
		}
		return beginDestroy(c, typesv1.Termination_REASON_LIMITATION, e.Message, nil, e.Resources)
	case EvExited:
		return exited(c, e)
	}
	if c.State == Destroying {
		return nextDestroying(c, ev)
	}
	return nextLaunching(c, ev)
}

func nextLaunching(c Container, ev Event) (Container, []Effect, error) {
	illegal := func() (Container, []Effect, error) {
		return c, nil, &TransitionError{State: c.State, Step: c.InFlight, Event: ev.event()}
	}
	switch e := ev.(type) {
	case EvLaunch:
		if c.State != Starting || c.InFlight != StepNone {
			return illegal()
		}
		c.Isolators, c.HasImage = e.Isolators, e.HasImage
		if e.HasImage {
			c.State, c.InFlight = Provisioning, StepProvision
			return c, []Effect{DoProvision{}}, nil
		}
		return prepareNext(c)
	case EvRecovered:
		if c.State != Starting || c.InFlight != StepNone {
			return illegal()
		}
		c.Isolators, c.Recovered, c.Forked, c.Started, c.LaunchAnswered = e.Isolators, true, true, true, true
		c.Prepared, c.HasImage = e.Isolators, true
		c.State = Running
		return c, []Effect{DoWatchExit{}}, nil
	case EvProvisioned:
		if c.State != Provisioning || c.InFlight != StepProvision {
			return illegal()
		}
		c.InFlight = StepNone
		if e.Err != nil {
			return failLaunch(c, StepProvision, fmt.Errorf("provisioning failed: %w", e.Err))
		}
		return prepareNext(c)
	case EvPrepared:
		if c.State != Preparing || c.InFlight != StepPrepare || e.Index != c.Prepared {
			return illegal()
		}
		c.InFlight = StepNone
		c.Prepared++
		if e.Err != nil {
			return failLaunch(c, StepPrepare, fmt.Errorf("preparing failed: %w", e.Err))
		}
		return prepareNext(c)
	case EvForked:
		if c.State != Preparing || c.InFlight != StepFork {
			return illegal()
		}
		c.InFlight = StepNone
		if e.Err != nil {
			return failLaunch(c, StepFork, fmt.Errorf("forking the container's init failed: %w", e.Err))
		}
		c.Forked = true
		c.State, c.InFlight = Isolating, StepIsolate
		return c, []Effect{DoWatchExit{}, DoIsolate{}}, nil
	case EvIsolated:
		if c.State != Isolating || c.InFlight != StepIsolate {
			return illegal()
		}
		c.InFlight = StepNone
		if e.Err != nil {
			return failLaunch(c, StepIsolate, fmt.Errorf("isolating failed: %w", e.Err))
		}
		c.State, c.InFlight = Fetching, StepFetch
		return c, []Effect{DoFetch{}}, nil
	case EvFetched:
		if c.State != Fetching || c.InFlight != StepFetch {
			return illegal()
		}
		c.InFlight = StepNone
		if e.Err != nil {
			return failLaunch(c, StepFetch, fmt.Errorf("fetching failed: %w", e.Err))
		}
		c.InFlight = StepExec
		return c, []Effect{DoExec{}}, nil
	case EvExeced:
		if c.State != Fetching || c.InFlight != StepExec {
			return illegal()
		}
		c.InFlight = StepNone
		if e.Err != nil {
			return failLaunch(c, StepExec, fmt.Errorf("starting the command failed: %w", e.Err))
		}
		c.State, c.LaunchAnswered, c.Started = Running, true, true
		if c.Exited {
			// The command already ran and exited.
			c, effects, err := beginDestroy(c, typesv1.Termination_REASON_COMMAND_EXITED, "", nil, nil)
			return c, append([]Effect{DoAnswerLaunch{}}, effects...), err
		}
		return c, []Effect{DoAnswerLaunch{}}, nil
	}
	return illegal()
}

// prepareNext prepares the next isolator, or forks when all have prepared.
func prepareNext(c Container) (Container, []Effect, error) {
	c.State = Preparing
	if c.Prepared < c.Isolators {
		c.InFlight = StepPrepare
		return c, []Effect{DoPrepare{Index: c.Prepared}}, nil
	}
	c.InFlight = StepFork
	return c, []Effect{DoFork{}}, nil
}

// failLaunch destroys a container whose launch step failed; the launch request
// gets the error at once, the waiters get the termination at the end.
func failLaunch(c Container, step Step, err error) (Container, []Effect, error) {
	c, effects, terr := beginDestroy(c, typesv1.Termination_REASON_LAUNCH_FAILED, err.Error(), err, nil)
	if c.Destroy != nil {
		c.Destroy.FailedStep = step
	}
	return c, effects, terr
}

func exited(c Container, e EvExited) (Container, []Effect, error) {
	if !c.Forked || c.Exited {
		return c, nil, &TransitionError{State: c.State, Step: c.InFlight, Event: e.event()}
	}
	c.Exited, c.Exit = true, e.Exit
	switch c.State {
	case Destroying:
		if c.InFlight == StepAwaitExit {
			return cleanup(c)
		}
		return c, nil, nil // the destroy step in flight continues
	case Running:
		return beginDestroy(c, typesv1.Termination_REASON_COMMAND_EXITED, "", nil, nil)
	case Fetching:
		if c.InFlight == StepExec {
			// A short command can run and exit before the launcher's answer
			// to the release arrives: the answer decides what the exit means.
			return c, nil, nil
		}
		fallthrough
	default:
		// The init died before the command was released: a launch failure.
		err := fmt.Errorf("the container's init exited during %s: %s: %w", c.State, describeExit(e.Exit), errdefs.ErrInternal)
		c, effects, terr := failLaunch(c, c.InFlight, err)
		if c.Destroy != nil {
			c.Destroy.InitDied = true
		}
		return c, effects, terr
	}
}

// beginDestroy marks the container Destroying and starts the first destroy
// step, or waits for the launch step in flight to settle first.
func beginDestroy(c Container, reason typesv1.Termination_Reason, msg string, err error, limited []string) (Container, []Effect, error) {
	if c.State == Destroying {
		return c, nil, nil // a second destroy joins the first
	}
	var effects []Effect
	if !c.LaunchAnswered {
		c.LaunchAnswered = true
		lerr := err
		if lerr == nil {
			lerr = fmt.Errorf("container destroyed during %s: %w", c.State, errdefs.ErrCanceled)
			if reason == typesv1.Termination_REASON_LIMITATION {
				lerr = fmt.Errorf("container hit a limitation during %s: %s: %w", c.State, msg, errdefs.ErrResourceExhausted)
			}
		}
		effects = append(effects, DoAnswerLaunch{Err: lerr})
	}
	c.Destroy = &Destroy{From: c.State, Reason: reason, Message: msg, Err: err, Limited: limited}
	c.State = Destroying
	switch c.InFlight {
	case StepNone:
		next, more, _ := afterInFlight(c)
		return next, append(effects, more...), nil
	case StepFetch:
		// A fetch is aborted rather than awaited (Mesos: fetcher.kill).
		return c, append(effects, DoKillFetch{}), nil
	default:
		// Provision, prepare, fork, isolate and exec are awaited: their
		// completion arrives as an event and the destroy goes on from there.
		return c, effects, nil
	}
}

// afterInFlight picks the first destroy step once nothing of the launch is in
// flight: kill if there are processes, else clean up what was prepared.
func afterInFlight(c Container) (Container, []Effect, error) {
	if c.Forked && !c.Exited {
		c.InFlight = StepKill
		return c, []Effect{DoKill{}}, nil
	}
	return cleanup(c)
}

func cleanup(c Container) (Container, []Effect, error) {
	if c.Prepared > 0 {
		c.InFlight = StepCleanup
		return c, []Effect{DoCleanup{}}, nil
	}
	return destroyRootfs(c)
}

func destroyRootfs(c Container) (Container, []Effect, error) {
	if c.HasImage {
		c.InFlight = StepDestroyRootfs
		return c, []Effect{DoDestroyRootfs{}}, nil
	}
	c.InFlight = StepRemoveRuntime
	return c, []Effect{DoRemoveRuntime{}}, nil
}

func nextDestroying(c Container, ev Event) (Container, []Effect, error) {
	illegal := func() (Container, []Effect, error) {
		return c, nil, &TransitionError{State: c.State, Step: c.InFlight, Event: ev.event()}
	}
	d := c.Destroy
	note := func(step string, err error) {
		if err != nil && !errdefs.IsCanceled(err) {
			d.CleanupErrors = append(d.CleanupErrors, fmt.Sprintf("%s: %v", step, err))
		}
	}
	settle := func(want Step) bool {
		if c.InFlight != want {
			return false
		}
		c.InFlight = StepNone
		return true
	}
	// refine keeps the precise error of a launch step that failed after the
	// init died, instead of the generic "init exited".
	refine := func(step Step, what string, err error) {
		if err != nil && d.InitDied && d.FailedStep == step {
			d.Err = fmt.Errorf("%s: %w", what, err)
			d.Message, d.InitDied = d.Err.Error(), false
		}
	}
	switch e := ev.(type) {
	case EvProvisioned:
		if !settle(StepProvision) {
			return illegal()
		}
		return afterInFlight(c)
	case EvPrepared:
		if !settle(StepPrepare) || e.Index != c.Prepared {
			return illegal()
		}
		c.Prepared++
		return afterInFlight(c)
	case EvForked:
		if !settle(StepFork) {
			return illegal()
		}
		c.Forked = e.Err == nil
		if c.Forked {
			// The init exists and must be reaped; watch it before killing.
			c.InFlight = StepKill
			return c, []Effect{DoWatchExit{}, DoKill{}}, nil
		}
		return afterInFlight(c)
	case EvIsolated:
		if !settle(StepIsolate) {
			return illegal()
		}
		refine(StepIsolate, "isolating failed", e.Err)
		return afterInFlight(c)
	case EvFetched:
		if !settle(StepFetch) {
			return illegal()
		}
		refine(StepFetch, "fetching failed", e.Err)
		return afterInFlight(c)
	case EvExeced:
		if !settle(StepExec) {
			return illegal()
		}
		refine(StepExec, "starting the command failed", e.Err)
		return afterInFlight(c)
	case EvKilled:
		if !settle(StepKill) {
			return illegal()
		}
		note("killing the container's processes", e.Err)
		if c.Exited || e.Err != nil {
			// A failed kill cannot be waited on: go on releasing what we can.
			return cleanup(c)
		}
		c.InFlight = StepAwaitExit
		return c, nil, nil
	case EvCleanedUp:
		if !settle(StepCleanup) {
			return illegal()
		}
		for _, err := range e.Errs {
			note("isolator cleanup", err)
		}
		return destroyRootfs(c)
	case EvRootfsDestroyed:
		if !settle(StepDestroyRootfs) {
			return illegal()
		}
		note("destroying the rootfs", e.Err)
		c.InFlight = StepRemoveRuntime
		return c, []Effect{DoRemoveRuntime{}}, nil
	case EvRuntimeRemoved:
		if !settle(StepRemoveRuntime) {
			return illegal()
		}
		note("removing the runtime dir", e.Err)
		c.State = Terminated
		return c, []Effect{DoComplete{Termination: termination(c)}}, nil
	}
	return illegal()
}

// termination builds the final Termination of a destroyed container.
func termination(c Container) *typesv1.Termination {
	d := c.Destroy
	t := &typesv1.Termination{
		Reason:           d.Reason,
		Message:          d.Message,
		LimitedResources: d.Limited,
		CleanupErrors:    d.CleanupErrors,
	}
	if d.Err != nil {
		t.Error = errdefs.ToStatus(d.Err)
	}
	if c.Started && c.Exited && c.Exit.Known {
		ws := c.Exit.WaitStatus
		t.HasWaitStatus, t.WaitStatus = true, int32(ws)
		switch {
		case ws.Signaled():
			t.Signal, t.ExitCode = int32(ws.Signal()), 128+int32(ws.Signal())
		case ws.Exited():
			t.ExitCode = int32(ws.ExitStatus())
		}
	} else if c.Started {
		// Killed by the destroy before a status was written: SIGKILL.
		t.Signal, t.ExitCode = int32(syscall.SIGKILL), 128+int32(syscall.SIGKILL)
	}
	if !c.Started {
		t.ExitCode = launchFailureCode(d)
	}
	return t
}

// Exit codes of a container whose command never ran, as `docker run` uses them.
const (
	// ExitLaunchFailed: Berth failed before the command ran.
	ExitLaunchFailed = 125
	// ExitCannotInvoke: the command exists but cannot be executed.
	ExitCannotInvoke = 126
	// ExitNotFound: the command does not exist in the container.
	ExitNotFound = 127
)

func launchFailureCode(d *Destroy) int32 {
	if d.FailedStep == StepExec {
		switch {
		case errdefs.IsNotFound(d.Err):
			return ExitNotFound
		case errdefs.IsPermissionDenied(d.Err):
			return ExitCannotInvoke
		}
	}
	return ExitLaunchFailed
}

func describeExit(e Exit) string {
	if !e.Known {
		return "status unknown"
	}
	switch {
	case e.WaitStatus.Signaled():
		return fmt.Sprintf("killed by signal %d", e.WaitStatus.Signal())
	case e.WaitStatus.Exited():
		return fmt.Sprintf("exit status %d", e.WaitStatus.ExitStatus())
	}
	return fmt.Sprintf("wait status %#x", int(e.WaitStatus))
}

// IsTransitionError reports whether err is an illegal transition.
func IsTransitionError(err error) bool {
	var te *TransitionError
	return errors.As(err, &te)
}
