package builtin

import (
	"archive/tar"
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxLinkHops bounds the symlink chains followed for one library.
const maxLinkHops = 16

// collector copies host ELF files into a tree together with everything the
// dynamic loader needs to run them: the interpreter and the shared
// libraries, recursively.
type collector struct {
	t *tree
	// search lists the library directories, in order: the loader's default
	// directories first, then /etc/ld.so.conf's.
	search []string
	// defaults are the directories the image's own loader searches; a library
	// found elsewhere is put in libDir.
	defaults map[string]bool
	libDir   string
	// done holds the host real paths already scanned for dependencies.
	done map[string]bool
}

// newCollector returns a collector adding to t, with the library search path
// of this host.
func newCollector(t *tree) *collector {
	defaults := defaultLibDirs()
	search := append([]string{}, defaults...)
	seen := map[string]bool{}
	for _, d := range defaults {
		seen[d] = true
	}
	for _, d := range ldSoConfDirs("/etc/ld.so.conf", 0) {
		if !seen[d] {
			seen[d] = true
			search = append(search, d)
		}
	}
	c := &collector{t: t, search: search, defaults: map[string]bool{}, done: map[string]bool{}}
	for _, d := range defaults {
		c.defaults[d] = true
	}
	c.libDir = defaults[0]
	return c
}

// defaultLibDirs are the directories glibc's loader searches without a
// cache, multiarch first (Debian's layout), for this architecture.
func defaultLibDirs() []string {
	var dirs []string
	if triple := multiarchTriple(); triple != "" {
		dirs = append(dirs, "/lib/"+triple, "/usr/lib/"+triple)
	}
	if is64Bit() {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	return append(dirs, "/lib", "/usr/lib")
}

// ldSoConfDirs reads the directories of an ld.so.conf file, following its
// include lines (globs, relative to /etc). depth bounds include loops.
func ldSoConfDirs(file string, depth int) []string {
	if depth > 8 {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0, fields[0] == "hwcap":
		case fields[0] == "include":
			for _, pattern := range fields[1:] {
				if !filepath.IsAbs(pattern) {
					pattern = filepath.Join("/etc", pattern)
				}
				matches, _ := filepath.Glob(pattern)
				for _, m := range matches {
					dirs = append(dirs, ldSoConfDirs(m, depth+1)...)
				}
			}
		default:
			for _, d := range fields {
				if filepath.IsAbs(d) {
					dirs = append(dirs, filepath.Clean(d))
				}
			}
		}
	}
	return dirs
}

// addExecutable copies the host file src (symlinks followed) to dst in the
// image with everything it needs to run. Non-ELF files are an error.
func (c *collector) addExecutable(src, dst string) error {
	real, fi, err := realFile(src)
	if err != nil {
		return err
	}
	c.t.add(entry{name: dst, kind: tar.TypeReg, mode: int64(fi.Mode().Perm()), src: real, size: fi.Size()})
	return c.addDeps(real)
}

// realFile resolves every symlink of p and requires a regular file.
func realFile(p string) (string, os.FileInfo, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", nil, fmt.Errorf("builtin: %s: %w", p, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", nil, fmt.Errorf("builtin: %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("builtin: %s is not a regular file", p)
	}
	return real, fi, nil
}

// addDeps adds the interpreter and the shared libraries of the ELF file at
// the host path file.
func (c *collector) addDeps(file string) error {
	if c.done[file] {
		return nil
	}
	c.done[file] = true
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("builtin: %s: not an ELF file: %w", file, err)
	}
	defer func() { _ = f.Close() }()
	interp, err := interpreter(f)
	if err != nil {
		return fmt.Errorf("builtin: %s: %w", file, err)
	}
	if interp != "" {
		if err := c.addLib(interp, interp, 0); err != nil {
			return err
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("builtin: %s: dynamic section: %w", file, err)
	}
	runpath := runPaths(f, filepath.Dir(file))
	for _, name := range needed {
		host, img, err := c.find(name, runpath, f)
		if err != nil {
			return fmt.Errorf("builtin: %s needs %s: %w", file, name, err)
		}
		if err := c.addLib(host, img, 0); err != nil {
			return err
		}
	}
	return nil
}

// interpreter returns the PT_INTERP path of f, or "" for a static binary.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		buf := make([]byte, p.Filesz)
		if _, err := p.ReadAt(buf, 0); err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return strings.TrimRight(string(buf), "\x00"), nil
	}
	return "", nil
}

// isStatic reports whether the ELF file at p needs no loader and no library.
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, fmt.Errorf("builtin: %s: not an ELF file: %w", p, err)
	}
	defer func() { _ = f.Close() }()
	interp, err := interpreter(f)
	if err != nil {
		return false, err
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return false, fmt.Errorf("builtin: %s: %w", p, err)
	}
	return interp == "" && len(needed) == 0, nil
}

// runPaths returns f's DT_RUNPATH (or DT_RPATH) directories, with $ORIGIN
// expanded to origin. Each is marked by whether it was $ORIGIN-relative.
func runPaths(f *elf.File, origin string) []runDir {
	var out []runDir
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				rel := strings.Contains(d, "$ORIGIN") || strings.Contains(d, "${ORIGIN}")
				d = strings.NewReplacer("${ORIGIN}", origin, "$ORIGIN", origin).Replace(d)
				if filepath.IsAbs(d) {
					out = append(out, runDir{dir: filepath.Clean(d), origin: rel})
				}
			}
		}
		if len(out) > 0 {
			break
		}
	}
	return out
}

type runDir struct {
	dir    string
	origin bool
}

// find locates library name for the ELF file f: its run paths, then the
// search directories. It returns the host path and the image path: the same
// directory when the image's loader will look there, else libDir.
func (c *collector) find(name string, runpath []runDir, f *elf.File) (string, string, error) {
	if strings.Contains(name, "/") {
		return name, name, nil
	}
	for _, rd := range runpath {
		p := filepath.Join(rd.dir, name)
		if elfMatches(p, f) {
			// The same file in a default directory is found there by the
			// image's loader too; one copy serves every program.
			if q := c.inDefaults(p, name); q != "" {
				return q, q, nil
			}
			if rd.origin {
				return p, filepath.Join(c.libDir, name), nil
			}
			return p, p, nil
		}
	}
	for _, dir := range c.search {
		p := filepath.Join(dir, name)
		if !elfMatches(p, f) {
			continue
		}
		if c.defaults[dir] {
			return p, p, nil
		}
		return p, filepath.Join(c.libDir, name), nil
	}
	return "", "", fmt.Errorf("not found in %s: %w", strings.Join(c.search, ":"), os.ErrNotExist)
}

// inDefaults returns the path of the host file p under a default library
// directory, as name, or "" when it is in none.
func (c *collector) inDefaults(p, name string) string {
	want, err := os.Stat(p)
	if err != nil {
		return ""
	}
	for _, d := range c.search {
		if !c.defaults[d] {
			continue
		}
		q := filepath.Join(d, name)
		if got, err := os.Stat(q); err == nil && os.SameFile(want, got) {
			return q
		}
	}
	return ""
}

// elfMatches reports whether p is an ELF file for the same machine and class
// as f (so /lib/i386-linux-gnu does not satisfy an x86-64 binary).
func elfMatches(p string, f *elf.File) bool {
	g, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer func() { _ = g.Close() }()
	return g.Machine == f.Machine && g.Class == f.Class
}

// addLib puts the host library host at image path img. A symlink is
// recreated as a symlink, and its target added, when the target reached
// through the link text is the file the host reaches; anything else is
// copied as the real file.
func (c *collector) addLib(host, img string, hops int) error {
	if c.t.has(img) {
		return nil
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return fmt.Errorf("builtin: %s: %w", host, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 && hops < maxLinkHops {
		if link, hostTarget, ok := sameTarget(host); ok {
			imgTarget := link
			if !filepath.IsAbs(link) {
				imgTarget = filepath.Join(filepath.Dir(img), link)
			}
			c.t.add(entry{name: img, kind: tar.TypeSymlink, mode: 0o777, link: link})
			return c.addLib(hostTarget, imgTarget, hops+1)
		}
	}
	real, rfi, err := realFile(host)
	if err != nil {
		return err
	}
	c.t.add(entry{name: img, kind: tar.TypeReg, mode: int64(rfi.Mode().Perm()), src: real, size: rfi.Size()})
	return c.addDeps(real)
}

// sameTarget reads the symlink at p and reports whether resolving its text
// lexically gives the same file as the kernel's resolution.
func sameTarget(p string) (link, target string, ok bool) {
	link, err := os.Readlink(p)
	if err != nil {
		return "", "", false
	}
	target = link
	if !filepath.IsAbs(link) {
		target = filepath.Join(filepath.Dir(p), link)
	}
	want, err1 := os.Stat(p)
	got, err2 := os.Stat(target)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", false
	}
	return link, target, os.SameFile(want, got)
}
