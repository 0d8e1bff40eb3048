package cgroups

import (
	"math"
	"strconv"
)

// Write is one line of a limit plan: value written to file in the container's
// cgroup of controller (v2: the one unified cgroup).
type Write struct {
	Controller, File, Value string
}

// Limits are what a container may use; a zero field means no limit.
type Limits struct {
	// CPUShares is the relative CPU weight (v1 cpu.shares units, 1024 per
	// CPU); 0 means the kernel's default (1024).
	CPUShares uint64
	// CPUQuota is the hard CPU limit in CPUs (0.5: half a CPU per period).
	CPUQuota float64
	// MemoryBytes is the hard memory limit.
	MemoryBytes uint64
}

// Features are what a plan may depend on beyond the limits.
type Features struct {
	// Swap: the memory controller accounts swap (v1 memory.memsw.*,
	// v2 memory.swap.max); a memory limit then also forbids swap.
	Swap bool
}

const (
	// CFSPeriod is the CFS period in microseconds (the kernel's default).
	CFSPeriod = 100000
	// minCFSQuota is the smallest quota the kernel takes, in microseconds.
	minCFSQuota = 1000
	// sharesPerCPU is cpu.shares of one CPU.
	sharesPerCPU = 1024
	// minShares and maxShares bound cpu.shares.
	minShares = 2
	maxShares = 262144
)

// SharesFromCPUs converts CPUs to cpu.shares (1024 per CPU, at least 2);
// 0 CPUs gives 0 (unset).
func SharesFromCPUs(cpus float64) uint64 {
	if cpus <= 0 {
		return 0
	}
	s := uint64(cpus * sharesPerCPU)
	return min(max(s, minShares), maxShares)
}

// SharesToWeight converts v1 cpu.shares [2, 262144] to v2 cpu.weight
// [1, 10000] linearly, the conversion runc and crun use, so that a
// container gets the same share on both versions.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 100 // unset: the kernel's default weight
	}
	shares = min(max(shares, minShares), maxShares)
	return 1 + ((shares-2)*9999)/262142
}

// quotaMicros is the CFS quota of cpus CPUs per CFSPeriod.
func quotaMicros(cpus float64) int64 {
	q := int64(math.Round(cpus * CFSPeriod))
	return max(q, minCFSQuota)
}

// Plan returns the writes that set l on a container's cgroup, for the given
// controllers (cpu, memory; others are ignored). Unset limits are written
// as "no limit", so that the same plan serves Update.
func Plan(v Version, controllers []string, l Limits, f Features) []Write {
	var out []Write
	for _, c := range controllers {
		switch {
		case c == CPU && v == V1:
			shares := l.CPUShares
			if shares == 0 {
				shares = sharesPerCPU
			}
			quota := "-1"
			if l.CPUQuota > 0 {
				quota = strconv.FormatInt(quotaMicros(l.CPUQuota), 10)
			}
			out = append(out,
				Write{CPU, "cpu.shares", strconv.FormatUint(shares, 10)},
				// The period first: a quota is checked against it.
				Write{CPU, "cpu.cfs_period_us", strconv.Itoa(CFSPeriod)},
				Write{CPU, "cpu.cfs_quota_us", quota})
		case c == CPU && v == V2:
			quota := "max"
			if l.CPUQuota > 0 {
				quota = strconv.FormatInt(quotaMicros(l.CPUQuota), 10)
			}
			out = append(out,
				Write{CPU, "cpu.weight", strconv.FormatUint(SharesToWeight(l.CPUShares), 10)},
				Write{CPU, "cpu.max", quota + " " + strconv.Itoa(CFSPeriod)})
		case c == Memory && v == V1:
			limit := "-1"
			if l.MemoryBytes > 0 {
				limit = strconv.FormatUint(l.MemoryBytes, 10)
			}
			// The OOM killer stays on: a container over its limit loses a
			// process rather than hanging (Mesos does the same).
			out = append(out, Write{Memory, "memory.oom_control", "0"})
			if f.Swap {
				// memsw must stay >= limit_in_bytes: when shrinking write
				// the limit first, when growing memsw first. Writing both
				// as the same value in an order that works either way
				// is not possible, so -1 (no limit) is set first.
				out = append(out,
					Write{Memory, "memory.memsw.limit_in_bytes", "-1"},
					Write{Memory, "memory.limit_in_bytes", limit},
					Write{Memory, "memory.memsw.limit_in_bytes", limit})
			} else {
				out = append(out, Write{Memory, "memory.limit_in_bytes", limit})
			}
		case c == Memory && v == V2:
			limit := "max"
			if l.MemoryBytes > 0 {
				limit = strconv.FormatUint(l.MemoryBytes, 10)
			}
			out = append(out, Write{Memory, "memory.max", limit})
			if f.Swap {
				swap := "max"
				if l.MemoryBytes > 0 {
					swap = "0"
				}
				out = append(out, Write{Memory, "memory.swap.max", swap})
			}
		}
	}
	return out
}
