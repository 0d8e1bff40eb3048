package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestMaxSandboxAge(t *testing.T) {
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		delay          time.Duration
		headroom, used float64
		want           time.Duration
	}{
		{week, 0.1, 0, time.Duration(float64(week) * 0.9)},
		{week, 0.1, 0.4, time.Duration(float64(week) * 0.5)},
		{week, 0.1, 0.95, time.Minute},        // full disk: the floor
		{time.Second, 0.1, 0.95, time.Second}, // the floor is never above the delay
		{time.Hour, 0, 0.5, 30 * time.Minute},
		{10 * time.Second, 0, 0.5, 10 * time.Second}, // below a minute the delay is the floor
	} {
		if got := maxSandboxAge(tc.delay, tc.headroom, tc.used); got != tc.want {
			t.Errorf("maxSandboxAge(%v, %v, %v) = %v, want %v", tc.delay, tc.headroom, tc.used, got, tc.want)
		}
	}
}

// TestCollectSandboxes: old sandboxes go, unless kept; a sandbox whose
// output changed recently stays though its directory is old; files beside
// the sandboxes are left alone.
func TestCollectSandboxes(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	mk := func(name string, dirTime, outTime time.Time) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o750); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(p, "stdout")
		if err := os.WriteFile(out, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(out, outTime, outTime); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, dirTime, dirTime); err != nil {
			t.Fatal(err)
		}
	}
	mk("finished", old, old)
	mk("running", old, old)
	mk("still-writing", old, now)
	mk("fresh", now, now)
	if err := os.WriteFile(filepath.Join(dir, "not-a-sandbox"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old2 := now.Add(-3 * time.Hour)
	_ = os.Chtimes(filepath.Join(dir, "not-a-sandbox"), old2, old2)
	removed, err := collectSandboxes(dir, map[string]bool{"running": true}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"finished"}) {
		t.Errorf("removed %v, want [finished]", removed)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if !slices.Equal(left, []string{"fresh", "not-a-sandbox", "running", "still-writing"}) {
		t.Errorf("left %v", left)
	}
	if removed, err := collectSandboxes(filepath.Join(dir, "none"), nil, 0, now); err != nil || removed != nil {
		t.Errorf("no sandboxes dir: %v, %v", removed, err)
	}
}
