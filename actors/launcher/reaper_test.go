package launcher

import (
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// TestReaperReapsManyOnOneGoroutine: children watched together are each
// reaped once, with their exit status, including one that exited before it
// was watched; the goroutine ends when nothing is left to watch.
func TestReaperReapsManyOnOneGoroutine(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		missing(t, "no sh on PATH")
	}
	r := newReaper()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := func(code string) *os.Process {
		p, err := os.StartProcess(sh, []string{"sh", "-c", "exit " + code}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	early := start("9")
	time.Sleep(100 * time.Millisecond) // a zombie before it is watched
	procs := []*os.Process{early, start("3"), start("4"), start("5")}
	for _, p := range procs {
		wg.Add(1)
		if !r.watch(p, func() {
			defer wg.Done()
			st, err := p.Wait()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			codes[p.Pid]++
			mu.Unlock()
			if st.ExitCode() < 3 {
				t.Errorf("pid %d: exit %d", p.Pid, st.ExitCode())
			}
		}) {
			missing(t, "the kernel gives no pidfd (pidfd_open needs Linux 5.3)")
		}
	}
	wg.Wait()
	for _, p := range procs {
		if codes[p.Pid] != 1 {
			t.Errorf("pid %d reaped %d times", p.Pid, codes[p.Pid])
		}
	}
	for i := 0; ; i++ {
		r.mu.Lock()
		running := r.running
		r.mu.Unlock()
		if !running {
			break
		}
		if i > 500 {
			t.Fatal("the reaper's goroutine still runs with nothing to watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// missing skips outside CI and fails in CI, where every prerequisite must
// be there.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
