package main

import (
	"testing"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"100000000": 100000000,
		"0":         0,
		"512B":      512,
		"4k":        4 << 10,
		"64MiB":     64 << 20,
		"64mb":      64 << 20,
		"64M":       64 << 20,
		"1GiB":      1 << 30,
		"1.5G":      3 << 29,
		" 2 GiB ":   2 << 30,
		"1TiB":      1 << 40,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.2.3M", "12 parsecs", "1e3", "9999999TiB"} {
		if got, err := parseSize(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseSize(%q) = %d, %v; want InvalidArgument", bad, got, err)
		}
	}
}

func TestResourceFlags(t *testing.T) {
	r, err := (&resourceFlags{}).resources()
	if r != nil || err != nil {
		t.Errorf("no flags: %v, %v; want nil", r, err)
	}
	r, err = (&resourceFlags{cpus: 0.5, mem: "32MiB"}).resources()
	if err != nil || r.GetCpus() != 0.5 || r.GetMemBytes() != 32<<20 {
		t.Errorf("--cpus=0.5 --mem=32MiB: %v, %v", r, err)
	}
	for _, bad := range []resourceFlags{{cpus: -1}, {mem: "lots"}} {
		if _, err := bad.resources(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: err %v, want InvalidArgument", bad, err)
		}
	}
}

func TestIsolationFor(t *testing.T) {
	def := "filesystem/linux,docker/runtime"
	both := &typesv1.Resources{Cpus: 1, MemBytes: 1 << 20}
	for _, tc := range []struct {
		isolation string
		explicit  bool
		limits    *typesv1.Resources
		want      string
		err       bool
	}{
		{def, false, nil, def, false},
		{def, false, both, def + ",cgroups/cpu,cgroups/mem", false},
		{def, false, &typesv1.Resources{MemBytes: 1}, def + ",cgroups/mem", false},
		{def + ",cgroups/cpu", false, both, def + ",cgroups/cpu,cgroups/mem", false},
		{def + ",cgroups", true, both, def + ",cgroups", false},
		{def + ",cgroups/cpu,cgroups/mem", true, both, def + ",cgroups/cpu,cgroups/mem", false},
		{def, true, both, "", true},
		{def, true, nil, def, false},
	} {
		got, err := isolationFor(tc.isolation, tc.explicit, tc.limits)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("isolationFor(%q, %v, %v) = %q, %v; want %q (error %v)", tc.isolation, tc.explicit, tc.limits, got, err, tc.want, tc.err)
		}
		if tc.err && !errdefs.IsInvalidArgument(err) {
			t.Errorf("error %v is not invalid argument", err)
		}
	}
}

func TestExitStatusOfALimitation(t *testing.T) {
	for _, tc := range []struct {
		reason typesv1.Termination_Reason
		code   int32
		want   int
	}{
		{typesv1.Termination_REASON_COMMAND_EXITED, 0, 0},
		{typesv1.Termination_REASON_COMMAND_EXITED, 3, 3},
		{typesv1.Termination_REASON_LIMITATION, 0, 137},
		{typesv1.Termination_REASON_LIMITATION, 137, 137},
		{typesv1.Termination_REASON_LIMITATION, 1, 1},
	} {
		if got := exitStatus(&typesv1.Termination{Reason: tc.reason, ExitCode: tc.code}); got != tc.want {
			t.Errorf("exitStatus(%v, %d) = %d, want %d", tc.reason, tc.code, got, tc.want)
		}
	}
}
