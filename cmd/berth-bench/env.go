package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/cmd/berth-bench/internal/report"
	"github.com/berthrt/berth/process/errdefs"
)

// peers are the programs a run compares Berth with, and the Debian package
// each comes in.
var peers = []struct{ bin, pkg string }{
	{"runc", "runc"}, {"crun", "crun"}, {"skopeo", "skopeo"}, {"umoci", "umoci"}, {"docker-registry", "docker-registry"},
}

// ensurePeers finds every peer on PATH. Missing ones are installed with
// apt-get when running as root outside CI; otherwise the error names the
// packages to install.
func ensurePeers(ctx context.Context, getenv func(string) string, log func(string, ...any)) error {
	var missing []string
	for _, p := range peers {
		if _, err := exec.LookPath(p.bin); err != nil {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	install := "apt-get install -y " + strings.Join(missing, " ")
	if os.Geteuid() != 0 || getenv("CI") != "" {
		return fmt.Errorf("peers missing: %s; install them with `%s` (berth-bench installs them itself only as root outside CI): %w",
			strings.Join(missing, ", "), install, errdefs.ErrFailedPrecondition)
	}
	log("installing the peers: %s", install)
	for _, argv := range [][]string{{"apt-get", "update", "-qq"}, append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s: %w", strings.Join(argv, " "), err, out, errdefs.ErrUnavailable)
		}
	}
	return nil
}

// machine describes this host and the peers' versions.
func machine(ctx context.Context) report.Machine {
	m := report.Machine{Cores: runtime.NumCPU(), Go: goVersion(ctx), Versions: map[string]string{}}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")); err == nil {
		m.MemoryMB = kb / 1024
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	for _, p := range peers {
		m.Versions[p.bin] = firstLine(ctx, p.bin, "--version")
	}
	return m
}

// procField is the value of the first "name : value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func goVersion(ctx context.Context) string {
	if v := firstLine(ctx, "go", "env", "GOVERSION"); v != "" {
		return v
	}
	return runtime.Version()
}

// firstLine is the first line a command prints, "" when it fails.
func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// commit is HEAD's short hash, with "+dirty" when the work tree has
// changes.
func commit(ctx context.Context, dir string) string {
	c := firstLine(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD")
	if c == "" {
		return "unknown"
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		c += "+dirty"
	}
	return c
}

// moduleRoot is the directory and path of the main module.
func moduleRoot(ctx context.Context) (dir, path string, err error) {
	gomod := firstLine(ctx, "go", "env", "GOMOD")
	if gomod == "" || gomod == os.DevNull {
		return "", "", fmt.Errorf("run berth-bench inside the berth repository (go env GOMOD is empty): %w", errdefs.ErrFailedPrecondition)
	}
	dir = strings.TrimSuffix(gomod, "/go.mod")
	path = firstLine(ctx, "go", "list", "-m")
	return dir, path, nil
}
