package appc

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// fetchChildEnv makes the test binary a child that fetches one image into
// a store and exits: the crash test kills it midway (see
// TestFetchKilledMidway). Its value is "<store dir>|<prefix>|<ref>".
const fetchChildEnv = "BERTH_TEST_APPC_FETCH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(fetchChildEnv); v != "" {
		os.Exit(fetchChild(v))
	}
	os.Exit(m.Run())
}

func fetchChild(v string) int {
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "want dir|prefix|ref")
		return 2
	}
	s, err := New(Options{Dir: parts[0], DiscoveryPrefix: parts[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := s.Get(context.Background(), parts[2], "", true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
