package docker

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// pullChildEnv makes the test binary a child that pulls one image into a
// store and exits: the crash test kills it midway (see
// TestRegistryPullKilledMidway). Its value is "<store dir>|<registry>|<ref>".
const pullChildEnv = "BERTH_TEST_PULL_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(pullChildEnv); v != "" {
		os.Exit(pullChild(v))
	}
	os.Exit(m.Run())
}

func pullChild(v string) int {
	var dir, reg, ref string
	if _, err := fmt.Sscanf(replaceBars(v), "%s %s %s", &dir, &reg, &ref); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := New(Options{Dir: dir, Registry: reg})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := s.Get(context.Background(), ref, "copy", true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func replaceBars(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '|' {
			b[i] = ' '
		}
	}
	return string(b)
}
