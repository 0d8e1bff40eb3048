package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// resourceFlags are a container's hard limits: --cpus and --mem.
type resourceFlags struct {
	cpus float64
	mem  string
}

func (f *resourceFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&f.cpus, "cpus", 0, "CPUs the container may use (0.5: half a CPU); needs the cgroups/cpu isolator")
	fs.StringVar(&f.mem, "mem", "", "memory limit: bytes, or with a unit: 64MiB, 512M, 1GiB, 1.5G (binary units); needs the cgroups/mem isolator")
}

// resources returns the limits as the container's requests and limits, or
// nil when none is given.
func (f *resourceFlags) resources() (*typesv1.Resources, error) {
	if f.cpus < 0 || math.IsNaN(f.cpus) || math.IsInf(f.cpus, 0) {
		return nil, fmt.Errorf("--cpus=%v: want a positive number of CPUs: %w", f.cpus, errdefs.ErrInvalidArgument)
	}
	var mem uint64
	if f.mem != "" {
		var err error
		if mem, err = parseSize(f.mem); err != nil {
			return nil, fmt.Errorf("--mem: %w", err)
		}
	}
	if f.cpus == 0 && mem == 0 {
		return nil, nil
	}
	return &typesv1.Resources{Cpus: f.cpus, MemBytes: mem}, nil
}

// sizeUnits are the multipliers of parseSize's suffixes, lowercased; the
// units are binary whether written 64M, 64MB or 64MiB (as docker run's
// --memory reads them).
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseSize reads a size: a number of bytes, optionally with a fraction and
// a unit (64MiB, 1.5G, 100000000).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if num == "" || !ok {
		return 0, fmt.Errorf("size %q: want bytes or a number with B, KiB, MiB, GiB or TiB: %w", s, errdefs.ErrInvalidArgument)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want bytes or a number with B, KiB, MiB, GiB or TiB: %w", s, errdefs.ErrInvalidArgument)
	}
	bytes := v * float64(mult)
	if bytes >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large: %w", s, errdefs.ErrInvalidArgument)
	}
	return uint64(bytes), nil
}

// isolationSet reports whether --isolation was given on the command line.
func isolationSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "isolation" })
	return set
}

// isolationFor returns the isolation that enforces limits: isolation with
// cgroups/cpu and cgroups/mem added when the user did not choose it
// (explicit false), or an error naming the missing isolator when the user's
// choice lacks it.
func isolationFor(isolation string, explicit bool, limits *typesv1.Resources) (string, error) {
	var need []string
	if limits.GetCpus() > 0 {
		need = append(need, "cgroups/cpu")
	}
	if limits.GetMemBytes() > 0 {
		need = append(need, "cgroups/mem")
	}
	have := map[string]bool{}
	for _, name := range strings.Split(isolation, ",") {
		have[strings.TrimSpace(name)] = true
	}
	if have["cgroups"] { // Mesos's deprecated name for both
		have["cgroups/cpu"], have["cgroups/mem"] = true, true
	}
	for _, n := range need {
		if have[n] {
			continue
		}
		if explicit {
			return "", fmt.Errorf("--cpus and --mem need the cgroups isolators: --isolation lacks %s: %w", n, errdefs.ErrInvalidArgument)
		}
		isolation += "," + n
	}
	return isolation, nil
}
