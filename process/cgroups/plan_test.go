package cgroups

import (
	"reflect"
	"testing"
)

func TestSharesToWeight(t *testing.T) {
	for _, tt := range []struct{ shares, weight uint64 }{
		{0, 100}, // unset: the kernel's default
		{1, 1},   // clamped to 2
		{2, 1},
		{1024, 39},
		{512, 20},
		{2048, 79},
		{262144, 10000},
		{1 << 30, 10000}, // clamped
	} {
		if got := SharesToWeight(tt.shares); got != tt.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tt.shares, got, tt.weight)
		}
	}
}

func TestSharesFromCPUs(t *testing.T) {
	for _, tt := range []struct {
		cpus   float64
		shares uint64
	}{{0, 0}, {-1, 0}, {0.001, 2}, {0.5, 512}, {1, 1024}, {2.5, 2560}, {1000, 262144}} {
		if got := SharesFromCPUs(tt.cpus); got != tt.shares {
			t.Errorf("SharesFromCPUs(%v) = %d, want %d", tt.cpus, got, tt.shares)
		}
	}
}

func TestPlan(t *testing.T) {
	both := []string{CPU, Memory}
	tests := []struct {
		name string
		v    Version
		ctl  []string
		l    Limits
		f    Features
		plan []Write
	}{
		{"v1 nothing set: no limits", V1, both, Limits{}, Features{}, []Write{
			{CPU, "cpu.shares", "1024"}, {CPU, "cpu.cfs_period_us", "100000"}, {CPU, "cpu.cfs_quota_us", "-1"},
			{Memory, "memory.oom_control", "0"}, {Memory, "memory.limit_in_bytes", "-1"},
		}},
		{"v1 half a cpu, 64 MiB", V1, both, Limits{CPUShares: 512, CPUQuota: 0.5, MemoryBytes: 64 << 20}, Features{}, []Write{
			{CPU, "cpu.shares", "512"}, {CPU, "cpu.cfs_period_us", "100000"}, {CPU, "cpu.cfs_quota_us", "50000"},
			{Memory, "memory.oom_control", "0"}, {Memory, "memory.limit_in_bytes", "67108864"},
		}},
		{"v1 tiny quota is the kernel's minimum", V1, []string{CPU}, Limits{CPUShares: 2, CPUQuota: 0.001}, Features{}, []Write{
			{CPU, "cpu.shares", "2"}, {CPU, "cpu.cfs_period_us", "100000"}, {CPU, "cpu.cfs_quota_us", "1000"},
		}},
		{"v1 memory with swap accounting", V1, []string{Memory}, Limits{MemoryBytes: 1 << 30}, Features{Swap: true}, []Write{
			{Memory, "memory.oom_control", "0"},
			{Memory, "memory.memsw.limit_in_bytes", "-1"},
			{Memory, "memory.limit_in_bytes", "1073741824"},
			{Memory, "memory.memsw.limit_in_bytes", "1073741824"},
		}},
		{"v2 nothing set", V2, both, Limits{}, Features{}, []Write{
			{CPU, "cpu.weight", "100"}, {CPU, "cpu.max", "max 100000"}, {Memory, "memory.max", "max"},
		}},
		{"v2 two cpus, 32 MiB, swap off", V2, both, Limits{CPUShares: 2048, CPUQuota: 2, MemoryBytes: 32 << 20}, Features{Swap: true}, []Write{
			{CPU, "cpu.weight", "79"}, {CPU, "cpu.max", "200000 100000"},
			{Memory, "memory.max", "33554432"}, {Memory, "memory.swap.max", "0"},
		}},
		{"v2 no memory limit leaves swap alone", V2, []string{Memory}, Limits{}, Features{Swap: true}, []Write{
			{Memory, "memory.max", "max"}, {Memory, "memory.swap.max", "max"},
		}},
		{"no controllers, no writes", V2, nil, Limits{MemoryBytes: 1}, Features{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plan(tt.v, tt.ctl, tt.l, tt.f); !reflect.DeepEqual(got, tt.plan) {
				t.Errorf("Plan =\n%v\nwant\n%v", got, tt.plan)
			}
		})
	}
}

func TestParseKeyValues(t *testing.T) {
	got := ParseKeyValues("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nbroken\nname text\n")
	want := map[string]uint64{"usage_usec": 1500, "user_usec": 1000, "system_usec": 500, "nr_periods": 0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseKeyValues = %v, want %v", got, want)
	}
	oom := ParseKeyValues("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	if oom["oom_kill"] != 3 {
		t.Errorf("oom_control oom_kill = %d, want 3", oom["oom_kill"])
	}
	for text, want := range map[string]uint64{"max\n": 0, "9223372036854771712\n": 0, "33554432\n": 33554432} {
		if got := parseLimit(text); got != want {
			t.Errorf("parseLimit(%q) = %d, want %d", text, got, want)
		}
	}
}
