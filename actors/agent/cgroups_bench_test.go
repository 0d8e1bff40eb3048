package agent_test

import (
	"fmt"
	"testing"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/process/cgroups/cgroupstest"
)

// BenchmarkLaunchCgroups launches /bin/true containers to their end through
// an in-process agent, without and with cgroups/cpu and cgroups/mem: the
// difference is the cost of the containers' cgroups (mkdir, limits, moving
// the init, rmdir). Needs root.
func BenchmarkLaunchCgroups(b *testing.B) {
	const base = "filesystem/linux,docker/runtime,namespaces/pid,namespaces/ipc,namespaces/uts"
	for _, bc := range []struct{ name, isolation string }{
		{"without", base},
		{"with", "filesystem/linux,docker/runtime,cgroups/cpu,cgroups/mem,namespaces/pid,namespaces/ipc,namespaces/uts"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			root, _, _ := cgroupstest.Root(b, "bench")
			ag := startAgent(b, agent.Options{Isolation: bc.isolation, CgroupsRoot: root})
			runToEnd(b, ag, "berth-test-warm", "/bin/true")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if term := runToEnd(b, ag, fmt.Sprintf("berth-test-c%d", i), "/bin/true"); term.GetExitCode() != 0 {
					b.Fatalf("launch %d: %v", i, term)
				}
			}
		})
	}
}
