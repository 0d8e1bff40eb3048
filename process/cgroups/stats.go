package cgroups

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berthrt/berth/process/errdefs"
)

// Stats is a usage sample of a container's cgroups. Fields of controllers
// the Manager lacks stay zero.
type Stats struct {
	// CPUUserSeconds and CPUSystemSeconds are the CPU time used.
	CPUUserSeconds, CPUSystemSeconds float64
	// MemoryUsage is the memory charged (v1 usage_in_bytes, v2 current).
	MemoryUsage uint64
	// MemoryRSS is the anonymous memory (v1 total_rss, v2 anon).
	MemoryRSS uint64
	// MemoryLimit is the hard limit in force, 0 for none.
	MemoryLimit uint64
	// OOMKills is how many processes the OOM killer killed in the cgroup.
	OOMKills uint64
	// Processes in the cgroup.
	Processes int
}

// userHZ is the unit of v1 cpuacct.stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// ParseKeyValues reads "key value" lines (cpu.stat, memory.stat,
// memory.events, cpuacct.stat, memory.oom_control); lines whose value is
// not a number are skipped.
func ParseKeyValues(text string) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// parseLimit reads a limit file: a number, "max" (v2) or a v1 "no limit"
// (a page-rounded huge number), both 0.
func parseLimit(text string) uint64 {
	text = strings.TrimSpace(text)
	n, err := strconv.ParseUint(text, 10, 64)
	if err != nil || n >= math.MaxInt64/2 {
		return 0
	}
	return n
}

// Stats samples id's cgroups.
func (m *Manager) Stats(id string) (Stats, error) {
	if err := validName(id); err != nil {
		return Stats{}, err
	}
	var s Stats
	read := func(ctl, file string) (string, error) {
		b, err := os.ReadFile(filepath.Join(m.ctlDir[ctl], id, file))
		if err != nil {
			return "", classify("read", filepath.Join(m.ctlDir[ctl], id, file), err)
		}
		return string(b), nil
	}
	readKV := func(ctl, file string) (map[string]uint64, error) {
		text, err := read(ctl, file)
		return ParseKeyValues(text), err
	}
	v2 := m.layout.Version == V2
	if _, ok := m.ctlDir[CPU]; ok {
		switch {
		case v2:
			kv, err := readKV(CPU, "cpu.stat")
			if err != nil {
				return s, err
			}
			s.CPUUserSeconds = float64(kv["user_usec"]) / 1e6
			s.CPUSystemSeconds = float64(kv["system_usec"]) / 1e6
		default:
			if _, ok := m.ctlDir[CPUAcct]; ok {
				kv, err := readKV(CPUAcct, "cpuacct.stat")
				if err != nil {
					return s, err
				}
				s.CPUUserSeconds = float64(kv["user"]) / userHZ
				s.CPUSystemSeconds = float64(kv["system"]) / userHZ
			}
		}
	}
	if _, ok := m.ctlDir[Memory]; ok {
		usageFile, limitFile := "memory.usage_in_bytes", "memory.limit_in_bytes"
		if v2 {
			usageFile, limitFile = "memory.current", "memory.max"
		}
		usage, err := read(Memory, usageFile)
		if err != nil {
			return s, err
		}
		s.MemoryUsage = parseLimit(usage)
		limit, err := read(Memory, limitFile)
		if err != nil {
			return s, err
		}
		s.MemoryLimit = parseLimit(limit)
		kv, err := readKV(Memory, "memory.stat")
		if err != nil {
			return s, err
		}
		if v2 {
			s.MemoryRSS = kv["anon"]
		} else {
			s.MemoryRSS = kv["total_rss"]
		}
		if s.OOMKills, err = m.oomKills(id); err != nil {
			return s, err
		}
	}
	pids, err := m.Procs(id)
	if err != nil {
		return s, err
	}
	s.Processes = len(pids)
	return s, nil
}

// oomKills reads the OOM kill counter of id's memory cgroup (v1
// memory.oom_control's oom_kill, Linux 4.13; v2 memory.events' oom_kill).
func (m *Manager) oomKills(id string) (uint64, error) {
	d, ok := m.ctlDir[Memory]
	if !ok {
		return 0, fmt.Errorf("no memory controller: %w", errdefs.ErrFailedPrecondition)
	}
	file := "memory.oom_control"
	if m.layout.Version == V2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(d, id, file))
	if err != nil {
		return 0, classify("read", filepath.Join(d, id, file), err)
	}
	kv := ParseKeyValues(string(b))
	n, ok := kv["oom_kill"]
	if !ok && m.layout.Version == V1 {
		// Kernels before 4.13 only say whether the cgroup is under OOM.
		n = kv["under_oom"]
	}
	return n, nil
}
