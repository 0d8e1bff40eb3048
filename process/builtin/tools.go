package builtin

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
)

// toolDirs are the host directories searched for busybox and for tools, in
// order.
func toolDirs() []string { return []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} }

// hostTools are the programs the fallback tools layer copies from the host
// when present; "sh" is required. ps and mount are left out on purpose: they
// bring in several megabytes of libraries (systemd, gcrypt, mount, blkid).
func hostTools() []string {
	return []string{
		"sh", "[", "basename", "cat", "chmod", "cp", "cut", "date", "df", "dirname",
		"du", "echo", "env", "expr", "false", "find", "grep", "head", "hostname", "id",
		"kill", "ln", "ls", "mkdir", "mv", "printf", "pwd", "readlink", "rm", "rmdir",
		"sed", "seq", "sleep", "sort", "stat", "tail", "tee", "test", "touch", "tr",
		"true", "uname", "uniq", "wc", "whoami", "xargs",
	}
}

// appletName accepts the applet names busybox may print.
func appletName() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.+\[\]-]+$`) }

// toolsLayer builds layer 2: busybox when usable, else the host's tools. It
// also says which was used ("busybox" or "host tools").
func toolsLayer(ctx context.Context, o Options) (*tree, string, error) {
	if o.Busybox != "none" {
		bb, err := findBusybox(o.Busybox)
		if err != nil {
			return nil, "", err
		}
		if bb != "" {
			t, err := busyboxLayer(ctx, bb)
			if err == nil {
				return t, "busybox", nil
			}
			if o.Busybox != "" {
				return nil, "", err
			}
			// An auto-detected busybox that cannot be used: fall back.
		}
	}
	t, err := hostToolsLayer()
	if err != nil {
		return nil, "", err
	}
	return t, "host tools", nil
}

// findBusybox returns the busybox to use: the explicit path, or the first in
// toolDirs, or "" when there is none.
func findBusybox(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("builtin: busybox %s: %w", explicit, err)
		}
		return explicit, nil
	}
	for _, d := range toolDirs() {
		p := filepath.Join(d, "busybox")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", nil
}

// busyboxLayer puts busybox at /bin/busybox, with its libraries when it is
// dynamically linked, and one symlink per applet.
func busyboxLayer(ctx context.Context, bb string) (*tree, error) {
	applets, err := busyboxApplets(ctx, bb)
	if err != nil {
		return nil, err
	}
	t := newTree()
	static, err := isStatic(bb)
	if err != nil {
		return nil, err
	}
	if static {
		real, fi, err := realFile(bb)
		if err != nil {
			return nil, err
		}
		t.add(entry{name: "bin/busybox", kind: tar.TypeReg, mode: int64(fi.Mode().Perm()), src: real, size: fi.Size()})
	} else if err := newCollector(t).addExecutable(bb, "bin/busybox"); err != nil {
		return nil, fmt.Errorf("builtin: busybox is dynamically linked and its libraries do not resolve: %w", err)
	}
	for _, a := range applets {
		t.add(entry{name: "bin/" + a, kind: tar.TypeSymlink, mode: 0o777, link: "busybox"})
	}
	return t, nil
}

// busyboxApplets runs `busybox --list` and returns the applet names, sorted.
func busyboxApplets(ctx context.Context, bb string) ([]string, error) {
	cmd := exec.CommandContext(ctx, bb, "--list")
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("builtin: %s --list: %w", bb, err)
	}
	valid := appletName()
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := sc.Text()
		if a != "busybox" && valid.MatchString(a) {
			applets = append(applets, a)
		}
	}
	if !contains(applets, "sh") {
		return nil, fmt.Errorf("builtin: %s has no sh applet", bb)
	}
	sort.Strings(applets)
	return applets, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hostToolsLayer copies the host's shell and tools with their libraries. The
// real file of each tool goes to /bin/<its own name>; a tool reached through
// a symlink of another name (sh -> dash) gets a symlink /bin/<name>.
func hostToolsLayer() (*tree, error) {
	t := newTree()
	c := newCollector(t)
	for _, name := range hostTools() {
		src := lookTool(name)
		if src == "" {
			if name == "sh" {
				return nil, fmt.Errorf("builtin: no shell on the host (looked for sh in %v): %w", toolDirs(), fs.ErrNotExist)
			}
			continue
		}
		if err := addTool(t, c, name, src); err != nil {
			if name == "sh" {
				return nil, err
			}
			// An optional tool that is not a usable ELF program is left out.
			continue
		}
	}
	return t, nil
}

// addTool adds the host program src as /bin/name.
func addTool(t *tree, c *collector, name, src string) error {
	real, _, err := realFile(src)
	if err != nil {
		return err
	}
	if static, err := isStatic(real); err != nil {
		return err
	} else if !static {
		// Check first that the libraries resolve, so a failing optional tool
		// leaves nothing half-added.
		if err := newCollector(newTree()).addDeps(real); err != nil {
			return err
		}
	}
	base := filepath.Base(real)
	if err := c.addExecutable(real, "bin/"+base); err != nil {
		return err
	}
	if base != name {
		t.add(entry{name: "bin/" + name, kind: tar.TypeSymlink, mode: 0o777, link: base})
	}
	return nil
}

// lookTool finds name in toolDirs ("" if absent).
func lookTool(name string) string {
	for _, d := range toolDirs() {
		p := filepath.Join(d, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}
