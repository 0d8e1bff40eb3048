package builtin

import (
	"archive/tar"
	"sort"
)

// baseDirs are the directories of the base layer with their modes.
func baseDirs() map[string]int64 {
	return map[string]int64{
		"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "lib": 0o755,
		"mnt": 0o755, "opt": 0o755, "proc": 0o555, "root": 0o700, "run": 0o755,
		"sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
		"usr/sbin": 0o755, "usr/lib": 0o755, "usr/local": 0o755, "usr/local/bin": 0o755,
		"var": 0o755, "var/tmp": 0o1777, "var/log": 0o755,
	}
}

// baseFiles are the small files of the base layer.
func baseFiles() map[string]string {
	return map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"etc/hosts":    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"etc/hostname": "",
	}
}

// baseLayer is layer 1: the directory skeleton and /etc's identity files.
func baseLayer() *tree {
	t := newTree()
	dirs := baseDirs()
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		names = append(names, name)
	}
	// Parents first, so that each directory gets its own mode.
	sort.Strings(names)
	for _, name := range names {
		t.add(entry{name: name, kind: tar.TypeDir, mode: dirs[name]})
	}
	for name, content := range baseFiles() {
		t.add(entry{name: name, kind: tar.TypeReg, mode: 0o644, data: []byte(content)})
	}
	return t
}
