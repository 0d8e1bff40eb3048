package main

import (
	"testing"

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
