package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/fixtures/images"
	"github.com/berthrt/berth/fixtures/rootfs"
)

// listRootfs prints every entry of / but the mounts a container gets
// (/proc, /sys, /dev, /mnt holding the sandbox), with type, mode, owner,
// size, symlink target and, for files, an md5 of the content; sorted.
const listRootfs = `cd / && find . \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./mnt \) -prune -o -print | sort |
while read -r f; do stat -c '%n|%F|%a|%u|%g|%s|%N' "$f"; if [ -f "$f" ] && [ ! -L "$f" ]; then md5sum "$f"; fi; done`

// busyboxEntries is a layer with the host's static busybox and the applets
// the listing needs.
func busyboxEntries(t *testing.T) []images.Entry {
	t.Helper()
	actortest.RequiresTool(t, rootfs.BusyboxPath, "busybox-static")
	bb, err := os.ReadFile(rootfs.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	es := []images.Entry{images.Dir("bin"), images.Exec("bin/busybox", string(bb))}
	for _, applet := range []string{"sh", "find", "stat", "sort", "md5sum", "cat", "ls", "echo", "true"} {
		es = append(es, images.Symlink("bin/"+applet, "busybox"))
	}
	return append(es, images.Dir("etc"), images.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
		images.Dir("proc"), images.Dir("sys"), images.Dir("dev"), images.Dir("tmp"), images.Dir("mnt"))
}

// comparisonImages writes two OCI layouts: a three-layer image whose upper
// layers delete a file, delete a directory and make a directory opaque,
// and a one-layer image for the bind backend.
func comparisonImages(t *testing.T, dir string) (multi, single string) {
	t.Helper()
	bb := busyboxEntries(t)
	std := images.Standard("")
	spec := images.Spec{Config: images.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}}
	spec.Layers = append([]images.Layer{{Entries: bb}}, std.Layers...)
	multi = filepath.Join(dir, "multi")
	if _, err := images.OCILayout(multi, "v1", spec); err != nil {
		t.Fatal(err)
	}
	one := spec
	one.Layers = []images.Layer{{Entries: append(append([]images.Entry{}, bb...), std.Layers[0].Entries...)}}
	single = filepath.Join(dir, "single")
	if _, err := images.OCILayout(single, "v1", one); err != nil {
		t.Fatal(err)
	}
	return multi, single
}

// umociListing unpacks layout with umoci and lists its rootfs with the
// same busybox, chrooted.
func umociListing(t *testing.T, umoci, layout, bundle string) string {
	t.Helper()
	if out, err := exec.Command(umoci, "unpack", "--image", layout+":v1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	out, err := exec.Command("chroot", filepath.Join(bundle, "rootfs"), "/bin/sh", "-c", listRootfs).CombinedOutput()
	if err != nil {
		t.Fatalf("listing umoci's rootfs: %v\n%s", err, out)
	}
	return string(out)
}

// TestE2ERootfsMatchesUmoci: for every backend, the container's view of /
// equals `umoci unpack` of the same image (bind: of its one layer).
func TestE2ERootfsMatchesUmoci(t *testing.T) {
	h := newHost(t)
	umoci := actortest.RequiresTool(t, "umoci", "umoci")
	multi, single := comparisonImages(t, h.root)
	want := map[string]string{
		multi:  umociListing(t, umoci, multi, filepath.Join(h.root, "bundle-multi")),
		single: umociListing(t, umoci, single, filepath.Join(h.root, "bundle-single")),
	}
	if !strings.Contains(want[multi], "./o/new|") || strings.Contains(want[multi], "./o/old|") || strings.Contains(want[multi], "./del.txt|") {
		t.Fatalf("umoci's rootfs does not show the whiteouts; the fixture is wrong:\n%s", want[multi])
	}
	for _, c := range []struct{ backend, layout string }{
		{"copy", multi}, {"overlay", multi}, {"bind", single}, {"copy", single},
	} {
		t.Run(c.backend+"/"+filepath.Base(c.layout), func(t *testing.T) {
			out, errOut, code := h.execute(t, "--backend="+c.backend, "--image=oci:"+c.layout+":v1", "--command="+listRootfs)
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, errOut)
			}
			if out != want[c.layout] {
				t.Errorf("the container's / differs from umoci's rootfs\n%s", lineDiff(want[c.layout], out))
			}
		})
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
