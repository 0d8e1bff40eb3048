package containerizer

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// drive applies events in order and returns the final container and the
// effects of every step, joined as "a,b|c|..." (one group per event).
func drive(t *testing.T, c Container, evs ...Event) (Container, string) {
	t.Helper()
	var groups []string
	for _, ev := range evs {
		next, effects, err := Next(c, ev)
		if err != nil {
			t.Fatalf("event %s in %s/%s: %v", ev.event(), c.State, c.InFlight, err)
		}
		names := make([]string, 0, len(effects))
		for _, e := range effects {
			names = append(names, e.effect())
		}
		groups = append(groups, strings.Join(names, ","))
		c = next
	}
	return c, strings.Join(groups, "|")
}

var (
	errBoom = fmt.Errorf("boom: %w", errdefs.ErrInternal)
	exit0   = Exit{Known: true, WaitStatus: 0}
	exit42  = Exit{Known: true, WaitStatus: syscall.WaitStatus(42 << 8)}
	killed  = Exit{Known: true, WaitStatus: syscall.WaitStatus(syscall.SIGKILL)}
)

// launchTo returns a container advanced with two isolators to the given point.
func launched(t *testing.T) Container {
	t.Helper()
	c, _ := drive(t, Container{}, EvLaunch{HasImage: true, Isolators: 2},
		EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{},
		EvIsolated{}, EvFetched{}, EvExeced{})
	return c
}

func TestLaunchHappyPath(t *testing.T) {
	t.Parallel()
	c, effects := drive(t, Container{}, EvLaunch{HasImage: true, Isolators: 2},
		EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{},
		EvIsolated{}, EvFetched{}, EvExeced{})
	want := "provision|prepare|prepare|fork|watch-exit,isolate|fetch|exec|answer-launch"
	if effects != want {
		t.Fatalf("effects\n got %s\nwant %s", effects, want)
	}
	if c.State != Running || !c.Started || !c.LaunchAnswered {
		t.Fatalf("not running: %+v", c)
	}
	// The command exits: the destroy pipeline runs to the end.
	c, effects = drive(t, c, EvExited{Exit: exit42}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{})
	if effects != "cleanup|destroy-rootfs|remove-runtime|complete" {
		t.Fatalf("destroy effects %s", effects)
	}
	if c.State != Terminated {
		t.Fatalf("state %s", c.State)
	}
	term := termination(c)
	if term.GetExitCode() != 42 || !term.GetHasWaitStatus() || term.GetReason() != typesv1.Termination_REASON_COMMAND_EXITED {
		t.Fatalf("termination %v", term)
	}
}

func TestLaunchWithoutImageOrIsolators(t *testing.T) {
	t.Parallel()
	_, effects := drive(t, Container{}, EvLaunch{}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{},
		EvExited{Exit: exit0}, EvRuntimeRemoved{})
	want := "fork|watch-exit,isolate|fetch|exec|answer-launch|remove-runtime|complete"
	if effects != want {
		t.Fatalf("effects\n got %s\nwant %s", effects, want)
	}
}

// TestLaunchStepFailures: a failure in every launch step answers the launch
// with the error, destroys what exists and ends with a launch-failed
// termination carrying the class of the error and docker's exit code.
func TestLaunchStepFailures(t *testing.T) {
	t.Parallel()
	notFound := fmt.Errorf("executable %q not found: %w", "nope", errdefs.ErrNotFound)
	denied := fmt.Errorf("exec: %w", errdefs.ErrPermissionDenied)
	cases := []struct {
		name     string
		events   []Event
		effects  string
		exitCode int32
		class    typesv1.Code
	}{
		{"provision", []Event{EvLaunch{HasImage: true, Isolators: 2}, EvProvisioned{Err: notFound}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"provision|answer-launch,destroy-rootfs|remove-runtime|complete", 125, typesv1.Code_CODE_NOT_FOUND},
		{"second prepare", []Event{EvLaunch{HasImage: true, Isolators: 2}, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1, Err: errBoom}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"provision|prepare|prepare|answer-launch,cleanup|destroy-rootfs|remove-runtime|complete", 125, typesv1.Code_CODE_INTERNAL},
		{"fork", []Event{EvLaunch{HasImage: true, Isolators: 1}, EvProvisioned{}, EvPrepared{}, EvForked{Err: errBoom}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"provision|prepare|fork|answer-launch,cleanup|destroy-rootfs|remove-runtime|complete", 125, typesv1.Code_CODE_INTERNAL},
		{"isolate", []Event{EvLaunch{HasImage: true, Isolators: 1}, EvProvisioned{}, EvPrepared{}, EvForked{}, EvIsolated{Err: errBoom}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"provision|prepare|fork|watch-exit,isolate|answer-launch,kill||cleanup|destroy-rootfs|remove-runtime|complete", 125, typesv1.Code_CODE_INTERNAL},
		{"fetch", []Event{EvLaunch{HasImage: true, Isolators: 1}, EvProvisioned{}, EvPrepared{}, EvForked{}, EvIsolated{}, EvFetched{Err: errBoom}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"provision|prepare|fork|watch-exit,isolate|fetch|answer-launch,kill||cleanup|destroy-rootfs|remove-runtime|complete", 125, typesv1.Code_CODE_INTERNAL},
		{"exec not found", []Event{EvLaunch{HasImage: true, Isolators: 1}, EvProvisioned{}, EvPrepared{}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{Err: notFound}, EvKilled{}, EvExited{Exit: exit0}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"provision|prepare|fork|watch-exit,isolate|fetch|exec|answer-launch,kill||cleanup|destroy-rootfs|remove-runtime|complete", 127, typesv1.Code_CODE_NOT_FOUND},
		{"exec denied", []Event{EvLaunch{Isolators: 0}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{Err: denied}, EvKilled{}, EvExited{Exit: exit0}, EvRuntimeRemoved{}},
			"fork|watch-exit,isolate|fetch|exec|answer-launch,kill||remove-runtime|complete", 126, typesv1.Code_CODE_PERMISSION_DENIED},
		// The init dies before the exec report arrives: the exec's precise error wins.
		{"init dies before exec report", []Event{EvLaunch{Isolators: 0}, EvForked{}, EvIsolated{}, EvFetched{}, EvExited{Exit: exit0}, EvExeced{Err: notFound}, EvRuntimeRemoved{}},
			"fork|watch-exit,isolate|fetch|exec||answer-launch,remove-runtime|complete", 127, typesv1.Code_CODE_NOT_FOUND},
		{"init dies while isolating", []Event{EvLaunch{Isolators: 1}, EvPrepared{}, EvForked{}, EvExited{Exit: exit0}, EvIsolated{}, EvCleanedUp{}, EvRuntimeRemoved{}},
			"prepare|fork|watch-exit,isolate|answer-launch|cleanup|remove-runtime|complete", 125, typesv1.Code_CODE_INTERNAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, effects := drive(t, Container{}, tc.events...)
			if effects != tc.effects {
				t.Fatalf("effects\n got %s\nwant %s", effects, tc.effects)
			}
			if c.State != Terminated {
				t.Fatalf("state %s", c.State)
			}
			term := termination(c)
			if term.GetReason() != typesv1.Termination_REASON_LAUNCH_FAILED || term.GetExitCode() != tc.exitCode ||
				term.GetError().GetCode() != tc.class || term.GetHasWaitStatus() {
				t.Fatalf("termination %v", term)
			}
		})
	}
}

// TestDestroyInEveryState: a destroy request in each state waits for the step
// in flight (or kills the fetch), then runs exactly the cleanup that state
// needs, as Mesos's destroy table says.
func TestDestroyInEveryState(t *testing.T) {
	t.Parallel()
	destroy := EvDestroy{Reason: typesv1.Termination_REASON_DESTROYED, Message: "destroyed by request"}
	base := []Event{EvLaunch{HasImage: true, Isolators: 2}}
	cases := []struct {
		name    string
		prefix  []Event // brings the container to the state
		after   []Event // the events the destroy waits for, in order
		effects string  // of the destroy and after
		signal  int32
	}{
		{"provisioning", base, []Event{EvProvisioned{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|destroy-rootfs|remove-runtime|complete", 0},
		{"provisioning fails meanwhile", base, []Event{EvProvisioned{Err: errBoom}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|destroy-rootfs|remove-runtime|complete", 0},
		{"preparing", append(base, EvProvisioned{}), []Event{EvPrepared{Index: 0}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|cleanup|destroy-rootfs|remove-runtime|complete", 0},
		{"forking", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}), []Event{EvForked{}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|watch-exit,kill||cleanup|destroy-rootfs|remove-runtime|complete", 0},
		{"fork fails meanwhile", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}), []Event{EvForked{Err: errBoom}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|cleanup|destroy-rootfs|remove-runtime|complete", 0},
		{"isolating", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{}), []Event{EvIsolated{}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|kill||cleanup|destroy-rootfs|remove-runtime|complete", 0},
		{"fetching", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{}, EvIsolated{}), []Event{EvFetched{Err: errdefs.ErrCanceled}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch,kill-fetch|kill||cleanup|destroy-rootfs|remove-runtime|complete", 0},
		{"execing", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{}, EvIsolated{}, EvFetched{}), []Event{EvExeced{}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"answer-launch|kill||cleanup|destroy-rootfs|remove-runtime|complete", 0},
		{"running", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{}), []Event{EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"kill||cleanup|destroy-rootfs|remove-runtime|complete", 9},
		{"running, exit seen before kill answer", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{}), []Event{EvExited{Exit: killed}, EvKilled{}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"kill||cleanup|destroy-rootfs|remove-runtime|complete", 9},
		{"running, status unknown", append(base, EvProvisioned{}, EvPrepared{Index: 0}, EvPrepared{Index: 1}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{}), []Event{EvKilled{}, EvExited{}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{}},
			"kill||cleanup|destroy-rootfs|remove-runtime|complete", 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := drive(t, Container{}, tc.prefix...)
			c, effects := drive(t, c, append([]Event{destroy}, tc.after...)...)
			if effects != tc.effects {
				t.Fatalf("effects\n got %s\nwant %s", effects, tc.effects)
			}
			if c.State != Terminated {
				t.Fatalf("state %s", c.State)
			}
			term := termination(c)
			if term.GetReason() != typesv1.Termination_REASON_DESTROYED || term.GetSignal() != tc.signal {
				t.Fatalf("termination %v", term)
			}
		})
	}
}

func TestSecondDestroyJoinsAndLimitationDestroys(t *testing.T) {
	t.Parallel()
	c := launched(t)
	c, effects := drive(t, c, EvDestroy{Reason: typesv1.Termination_REASON_DESTROYED}, EvDestroy{Reason: typesv1.Termination_REASON_LIMITATION}, EvLimited{})
	if effects != "kill||" {
		t.Fatalf("effects %s", effects)
	}
	if c.Destroy.Reason != typesv1.Termination_REASON_DESTROYED {
		t.Fatalf("the first cause must win: %v", c.Destroy.Reason)
	}
	c = launched(t)
	c, _ = drive(t, c, EvLimited{Resources: []string{"mem"}, Message: "memory limit 64MB reached"}, EvKilled{}, EvExited{Exit: killed}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{})
	term := termination(c)
	if term.GetReason() != typesv1.Termination_REASON_LIMITATION || term.GetLimitedResources()[0] != "mem" || term.GetSignal() != 9 {
		t.Fatalf("termination %v", term)
	}
}

// TestLimitationAfterExitIsTheCause: the OOM killer kills the command, the
// exit is seen first and the limitation arrives during the destroy: the
// termination names the limitation. A limitation after a destroy request
// does not replace it.
func TestLimitationAfterExitIsTheCause(t *testing.T) {
	t.Parallel()
	c := launched(t)
	c, _ = drive(t, c, EvExited{Exit: killed}, EvLimited{Resources: []string{"mem"}, Message: "Memory limit exceeded"}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{})
	term := termination(c)
	if term.GetReason() != typesv1.Termination_REASON_LIMITATION || term.GetMessage() != "Memory limit exceeded" || term.GetLimitedResources()[0] != "mem" || term.GetSignal() != 9 {
		t.Fatalf("termination %v", term)
	}
	c = launched(t)
	c, _ = drive(t, c, EvDestroy{Reason: typesv1.Termination_REASON_DESTROYED}, EvLimited{Resources: []string{"mem"}})
	if c.Destroy.Reason != typesv1.Termination_REASON_DESTROYED || c.Destroy.Limited != nil {
		t.Fatalf("a limitation replaced a destroy request: %+v", c.Destroy)
	}
}

// TestCleanupFailuresAreReportedAndCleanupGoesOn: a failed destroy step is
// recorded in the termination and the next steps still run.
func TestCleanupFailuresAreReportedAndCleanupGoesOn(t *testing.T) {
	t.Parallel()
	c := launched(t)
	c, effects := drive(t, c, EvDestroy{Reason: typesv1.Termination_REASON_DESTROYED},
		EvKilled{Err: errBoom}, EvCleanedUp{Errs: []error{errBoom, nil}}, EvRootfsDestroyed{Err: errBoom}, EvRuntimeRemoved{Err: errBoom})
	if effects != "kill|cleanup|destroy-rootfs|remove-runtime|complete" {
		t.Fatalf("effects %s", effects)
	}
	if n := len(termination(c).GetCleanupErrors()); n != 4 {
		t.Fatalf("cleanup errors %d: %v", n, termination(c).GetCleanupErrors())
	}
}

func TestRecoveredContainer(t *testing.T) {
	t.Parallel()
	c, effects := drive(t, Container{}, EvRecovered{Isolators: 1}, EvExited{Exit: exit42}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{})
	if effects != "watch-exit|cleanup|destroy-rootfs|remove-runtime|complete" {
		t.Fatalf("effects %s", effects)
	}
	if termination(c).GetExitCode() != 42 {
		t.Fatalf("termination %v", termination(c))
	}
}

// TestIllegalTransitions: every event that does not fit the state is a typed
// error and leaves the container unchanged.
func TestIllegalTransitions(t *testing.T) {
	t.Parallel()
	running := launched(t)
	provisioning, _ := drive(t, Container{}, EvLaunch{HasImage: true, Isolators: 1})
	terminated, _ := drive(t, Container{}, EvLaunch{}, EvForked{Err: errBoom}, EvRuntimeRemoved{})
	destroying, _ := drive(t, running, EvDestroy{})
	cases := []struct {
		name string
		c    Container
		ev   Event
	}{
		{"launch twice", running, EvLaunch{}},
		{"prepared while provisioning", provisioning, EvPrepared{}},
		{"wrong prepare index", func() Container { c, _ := drive(t, provisioning, EvProvisioned{}); return c }(), EvPrepared{Index: 3}},
		{"forked while running", running, EvForked{}},
		{"exited before fork", provisioning, EvExited{}},
		{"exited twice", func() Container { c, _ := drive(t, destroying, EvExited{Exit: killed}); return c }(), EvExited{}},
		{"killed while running", running, EvKilled{}},
		{"cleaned up while killing", destroying, EvCleanedUp{}},
		{"anything after termination", terminated, EvDestroy{}},
		{"recovered twice", running, EvRecovered{}},
	}
	for _, tc := range cases {
		next, effects, err := Next(tc.c, tc.ev)
		var te *TransitionError
		if !errors.As(err, &te) || !errdefs.IsFailedPrecondition(err) || effects != nil {
			t.Errorf("%s: want a TransitionError, got %v %v", tc.name, err, effects)
		}
		if next.State != tc.c.State || next.InFlight != tc.c.InFlight {
			t.Errorf("%s: container changed on an illegal event", tc.name)
		}
	}
}

// TestEveryStateHandlesDestroyAndLimitation sweeps every reachable (state,
// step) pair: destroy and limitation are legal everywhere but Terminated.
func TestEveryStateHandlesDestroyAndLimitation(t *testing.T) {
	t.Parallel()
	seq := []Event{EvLaunch{HasImage: true, Isolators: 1}, EvProvisioned{}, EvPrepared{}, EvForked{}, EvIsolated{}, EvFetched{}, EvExeced{}}
	c := Container{}
	seen := map[State]bool{}
	for _, ev := range seq {
		var err error
		c, _, err = Next(c, ev)
		if err != nil {
			t.Fatal(err)
		}
		seen[c.State] = true
		for _, kill := range []Event{EvDestroy{}, EvLimited{}} {
			d, _, err := Next(c, kill)
			if err != nil || d.State != Destroying {
				t.Fatalf("%s in %s/%s: %v %s", kill.event(), c.State, c.InFlight, err, d.State)
			}
		}
	}
	for _, s := range []State{Provisioning, Preparing, Isolating, Fetching, Running} {
		if !seen[s] {
			t.Errorf("state %s not reached", s)
		}
	}
}

// A short command can exit before the launcher's answer to the release
// arrives: the exit waits for the answer, then ends the container as a
// normal exit (not as an init that died during launch).
func TestExitBeforeExecAnswer(t *testing.T) {
	t.Parallel()
	c, _ := drive(t, Container{}, EvLaunch{HasImage: true, Isolators: 1},
		EvProvisioned{}, EvPrepared{Index: 0}, EvForked{}, EvIsolated{}, EvFetched{})
	c, effects := drive(t, c, EvExited{Exit: exit42}, EvExeced{}, EvCleanedUp{}, EvRootfsDestroyed{}, EvRuntimeRemoved{})
	if want := "|answer-launch,cleanup|destroy-rootfs|remove-runtime|complete"; effects != want {
		t.Fatalf("effects\n got %s\nwant %s", effects, want)
	}
	term := termination(c)
	if term.GetReason() != typesv1.Termination_REASON_COMMAND_EXITED || term.GetExitCode() != 42 {
		t.Fatalf("termination %v", term)
	}
	// The same exit with a failed release is a launch failure.
	c, _ = drive(t, Container{}, EvLaunch{Isolators: 0}, EvForked{}, EvIsolated{}, EvFetched{})
	c, _ = drive(t, c, EvExited{Exit: exit0}, EvExeced{Err: fmt.Errorf("nope: %w", errdefs.ErrNotFound)}, EvRuntimeRemoved{})
	if term := termination(c); term.GetExitCode() != 127 {
		t.Fatalf("termination %v, want exit 127", term)
	}
}
