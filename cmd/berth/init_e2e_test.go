package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// initExe waits for the init of the container whose runtime dir is below
// runtime and returns its argv[0] and what /proc/<pid>/exe links to.
func initExe(t *testing.T, runtime string) (argv0, exe string) {
	t.Helper()
	for i := 0; i < 1500; i++ {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			argv := strings.Split(string(b), "\x00")
			if len(argv) > 3 && argv[1] == "init" && strings.HasPrefix(argv[3], runtime) {
				link, err := os.Readlink(filepath.Join(filepath.Dir(p), "exe"))
				if err != nil {
					t.Fatal(err)
				}
				return argv[0], link
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no init found")
	return "", ""
}

// TestE2EInitBinary: with berth-init installed beside berth, containers'
// inits run berth-init from a sealed in-memory copy; without it, the berth
// binary itself. Either way the container runs.
func TestE2EInitBinary(t *testing.T) {
	h := newHost(t)
	solo := filepath.Join(h.root, "solo")
	if err := os.Mkdir(solo, 0o755); err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(solo, "berth")
	if out, err := exec.Command("cp", berthBin, alone).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name, bin, argv0, exe string
	}{
		{"berth-init, sealed", berthBin, "berth-init", "/memfd:berth-init (deleted)"},
		{"berth alone", alone, alone, alone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tc.bin, "execute", "--work_dir="+h.work, "--runtime_dir="+h.runtime, "--command=sleep 1; echo ran")
			out := make(chan string, 1)
			go func() {
				b, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("berth execute: %v", err)
				}
				out <- string(b)
			}()
			argv0, exe := initExe(t, h.runtime)
			if argv0 != tc.argv0 || exe != tc.exe {
				t.Errorf("init argv[0] %q, exe %q; want %q, %q", argv0, exe, tc.argv0, tc.exe)
			}
			if o := <-out; !strings.Contains(o, "ran") {
				t.Errorf("container output %q", o)
			}
		})
	}
}
