package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantPos   []string
		wantAgent string
	}{
		{[]string{"--agent=a:1", "c1", "c2"}, []string{"c1", "c2"}, "a:1"},
		{[]string{"c1", "--agent=a:1", "c2"}, []string{"c1", "c2"}, "a:1"},
		{[]string{"c1", "c2", "--agent", "a:1"}, []string{"c1", "c2"}, "a:1"},
		{[]string{"--agent=a:1", "--", "--not-a-flag"}, []string{"--not-a-flag"}, "a:1"},
		{nil, nil, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		agent := fs.String("agent", "", "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.wantPos) || *agent != tc.wantAgent {
			t.Errorf("parseInterleaved(%q) = %q, agent %q, %v; want %q, %q", tc.args, pos, *agent, err, tc.wantPos, tc.wantAgent)
		}
	}
}
