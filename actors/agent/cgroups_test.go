package agent

import (
	"slices"
	"testing"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/process/cgroups"
	"github.com/berthrt/berth/process/errdefs"
)

// The cgroups isolators come right after filesystem/linux, in Mesos's
// table order, whatever the order of --isolation; a bad --cgroups_root is
// an invalid argument.
func TestCgroupsIsolatorsOrderAndRoot(t *testing.T) {
	l, err := cgroups.Detect()
	if err == nil {
		_, err = cgroups.NewManager(l, cgroups.DefaultRoot, []string{cgroups.CPU, cgroups.Memory})
	}
	if err != nil {
		if actortest.InCI() {
			t.Fatal(err)
		}
		t.Skipf("this host has no cpu and memory cgroups: %v", err)
	}
	got, err := buildIsolators(Options{Isolation: "namespaces/pid,cgroups/mem,filesystem/linux,cgroups/cpu"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, iso := range got {
		names = append(names, iso.Name())
	}
	if want := []string{"filesystem/linux", "cgroups/cpu", "cgroups/mem", "namespaces/pid"}; !slices.Equal(names, want) {
		t.Errorf("isolators %v, want %v", names, want)
	}
	// Mesos's deprecated "cgroups" is both.
	got, err = buildIsolators(Options{Isolation: "cgroups"})
	if err != nil || len(got) != 2 || got[0].Name() != "cgroups/cpu" || got[1].Name() != "cgroups/mem" {
		t.Errorf("--isolation=cgroups: %v, %v; want cgroups/cpu and cgroups/mem", got, err)
	}
	if _, err := buildIsolators(Options{Isolation: "cgroups/mem", CgroupsRoot: "/abs"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("--cgroups_root=/abs: err %v, want InvalidArgument", err)
	}
}
