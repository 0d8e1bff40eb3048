// Package actortest gives every test its own actor system, a probe actor that
// records what it receives, and the gates for tests that need root or a tool.
//
// Gates skip outside CI with a message saying what to install; under CI=true a
// missing prerequisite fails the test, so CI never passes by skipping.
package actortest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/berthrt/berth/actors/logging"
)

// NewSystem returns a fresh actor system that logs warnings and errors to t.
// Its actors are stopped when the test ends.
func NewSystem(t testing.TB) *actor.ActorSystem {
	t.Helper()
	zl := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	sys := actor.NewActorSystem(logging.SystemOption(zl), actor.WithDeadLetterRequestLogging(false))
	t.Cleanup(sys.Shutdown)
	return sys
}

// Logger returns a zap logger writing to t.
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}

// InCI reports whether the tests run in CI, where a missing prerequisite is a
// failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequiresRoot skips the test unless it runs as root (fails it in CI).
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatal("this test needs root; CI runs as root (sudo -E go test ...)")
	}
	t.Skip("this test needs root: run as root, e.g. sudo -E go test ./...")
}

// RequiresTool skips the test unless the named program is on PATH (fails it in
// CI). install says how to get it, for example "apt-get install umoci".
func RequiresTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if InCI() {
		t.Fatalf("%s is missing in CI: %s (.ci/run installs it)", name, install)
	}
	t.Skipf("%s not found: %s", name, install)
	return ""
}

// Probe is an actor that records every user message it receives.
type Probe struct {
	PID *actor.PID
	ch  chan interface{}
}

// NewProbe spawns a probe on sys.
func NewProbe(t testing.TB, sys *actor.ActorSystem) *Probe {
	t.Helper()
	p := &Probe{ch: make(chan interface{}, 1024)}
	p.PID = sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case actor.SystemMessage, actor.AutoReceiveMessage:
			return
		}
		p.ch <- c.Message()
	}))
	return p
}

// Expect returns the next message, failing the test after timeout.
func (p *Probe) Expect(t testing.TB, timeout time.Duration) interface{} {
	t.Helper()
	select {
	case m := <-p.ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("probe: no message in %v", timeout)
		return nil
	}
}

// ExpectNone fails the test if a message arrives within d.
func (p *Probe) ExpectNone(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-p.ch:
		t.Fatalf("probe: unexpected message %T %v", m, m)
	case <-time.After(d):
	}
}

// MountsBelow lists the mount points of this process's mount namespace
// at or below dir, so that a test can show it left nothing mounted.
func MountsBelow(t testing.TB, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}
