package launch

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// DefaultPath is the PATH a command gets when its environment has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// command is a resolved executable and how to start it.
type command struct {
	path string
	attr *syscall.ProcAttr
}

// prepareCommand resolves, inside the container's root, the user, the
// working directory and the executable. Each failure names the problem in
// the image's terms: a missing executable is not found, a directory or a
// file without x bits is permission denied.
func (p *initProc) prepareCommand() (command, error) {
	spec := p.spec
	env := spec.GetEnv()
	if lookupEnv(env, "PATH") == "" {
		env = append(append([]string{}, env...), "PATH="+DefaultPath)
	}
	cred, home, err := resolveUser(spec.GetUser())
	if err != nil {
		return command{}, err
	}
	if home != "" && lookupEnv(env, "HOME") == "" {
		env = append(env, "HOME="+home)
	}
	dir := spec.GetWorkingDir()
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return command{}, fmt.Errorf("working directory %s: %w", dir, err)
	}
	path, err := lookPath(spec.GetArgs()[0], lookupEnv(env, "PATH"))
	if err != nil {
		return command{}, err
	}
	attr := &syscall.ProcAttr{
		Dir: dir, Env: env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Credential: cred, Setpgid: true},
	}
	return command{path: path, attr: attr}, nil
}

func lookupEnv(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// lookPath finds file as execvp(3) would, in the container's root.
func lookPath(file, path string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("empty command: %w", errdefs.ErrInvalidArgument)
	}
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	var denied error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, errdefs.ErrPermissionDenied) && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("executable %q not found in $PATH (%s) of the container: %w", file, path, errdefs.ErrNotFound)
}

// executable checks that p is a file the command may exec.
func executable(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("executable %s does not exist in the container: %w", p, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("executable %s: %w", p, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not an executable: %w", p, errdefs.ErrPermissionDenied)
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (mode %v): %w", p, st.Mode(), errdefs.ErrPermissionDenied)
	}
	return nil
}

// execError classifies a failed exec of name.
func execError(name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		// The file exists (lookPath saw it): its interpreter or loader does not.
		return fmt.Errorf("exec %s: its interpreter or dynamic loader is missing from the image: %w", name, errdefs.ErrNotFound)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("exec %s: %w: %w", name, errdefs.ErrPermissionDenied, err)
	case errors.Is(err, unix.ENOEXEC):
		return fmt.Errorf("exec %s: not an executable format: %w", name, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("exec %s: %w", name, err)
}

// resolveUser turns "user[:group]" (names or ids) into credentials, from the
// container's /etc/passwd and /etc/group. "" is root with no change.
func resolveUser(spec string) (*syscall.Credential, string, error) {
	if spec == "" {
		return nil, "", nil
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd, _ := readColonFile("/etc/passwd")
	groups, _ := readColonFile("/etc/group")
	var uid, gid uint32
	home, name := "", ""
	found := false
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		uid, found = uint32(n), true
		for _, e := range passwd {
			if len(e) >= 6 && e[2] == userPart {
				name, home = e[0], e[5]
				if g, err := strconv.ParseUint(e[3], 10, 32); err == nil {
					gid = uint32(g)
				}
				break
			}
		}
	} else {
		for _, e := range passwd {
			if len(e) >= 6 && e[0] == userPart {
				u, err1 := strconv.ParseUint(e[2], 10, 32)
				g, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 == nil && err2 == nil {
					uid, gid, name, home, found = uint32(u), uint32(g), e[0], e[5], true
				}
				break
			}
		}
	}
	if !found {
		return nil, "", fmt.Errorf("user %q: no such user in the container's /etc/passwd: %w", userPart, errdefs.ErrNotFound)
	}
	if hasGroup {
		g, ok := lookupGroup(groups, groupPart)
		if !ok {
			return nil, "", fmt.Errorf("group %q: no such group in the container's /etc/group: %w", groupPart, errdefs.ErrNotFound)
		}
		gid = g
	}
	cred := &syscall.Credential{Uid: uid, Gid: gid, Groups: supplementary(groups, name, gid)}
	return cred, home, nil
}

func lookupGroup(groups [][]string, g string) (uint32, bool) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), true
	}
	for _, e := range groups {
		if len(e) >= 3 && e[0] == g {
			if n, err := strconv.ParseUint(e[2], 10, 32); err == nil {
				return uint32(n), true
			}
		}
	}
	return 0, false
}

// supplementary lists the groups that name is a member of, besides gid.
func supplementary(groups [][]string, name string, gid uint32) []uint32 {
	out := []uint32{}
	if name == "" {
		return out
	}
	for _, e := range groups {
		if len(e) < 4 {
			continue
		}
		for _, m := range strings.Split(e[3], ",") {
			if m != name {
				continue
			}
			if n, err := strconv.ParseUint(e[2], 10, 32); err == nil && uint32(n) != gid {
				out = append(out, uint32(n))
			}
		}
	}
	return out
}

func readColonFile(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, s.Err()
}
