package builtin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func inCI() bool { return os.Getenv("CI") == "true" }

// requireTool skips without the program (fails under CI=true).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if inCI() {
		t.Fatalf("%s is missing in CI: apt-get install %s (.ci/run installs it)", name, name)
	}
	t.Skipf("%s is not installed: apt-get install %s", name, name)
	return ""
}

// requireRoot skips unless root (fails under CI=true).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if inCI() {
		t.Fatal("this test needs root; CI runs as root")
	}
	t.Skip("this test needs root: run as root, e.g. sudo -E go test ./process/builtin/")
}

// requireBusybox skips unless the host has busybox (fails under CI=true).
func requireBusybox(t *testing.T) string {
	t.Helper()
	bb, err := findBusybox("")
	if err != nil {
		t.Fatal(err)
	}
	if bb != "" {
		return bb
	}
	if inCI() {
		t.Fatal("busybox is missing in CI: apt-get install busybox-static (.ci/run installs it)")
	}
	t.Skip("busybox is not installed: apt-get install busybox-static")
	return ""
}

func build(t *testing.T, o Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	got, err := BuildWith(context.Background(), dir, o)
	if err != nil {
		t.Fatalf("BuildWith(%+v): %v", o, err)
	}
	if got != dir {
		t.Fatalf("BuildWith returned %q, want %q", got, dir)
	}
	return dir
}

func readJSON(t *testing.T, p string, v any) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return data
}

// readBlob reads a blob and checks its digest and size.
func readBlob(t *testing.T, dir string, d descriptor) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest || int64(len(data)) != d.Size {
		t.Fatalf("blob %s: digest %s size %d, want size %d", d.Digest, got, len(data), d.Size)
	}
	return data
}

type layout struct {
	index    index
	manifest manifest
	config   imageConfig
	layers   [][]*tar.Header
}

// load reads and verifies a layout: every blob's digest, every diff id.
func load(t *testing.T, dir string) layout {
	t.Helper()
	var l layout
	readJSON(t, filepath.Join(dir, "index.json"), &l.index)
	if len(l.index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(l.index.Manifests))
	}
	m := l.index.Manifests[0]
	if m.Annotations[annotationRefName] != "latest" {
		t.Fatalf("ref name %q, want latest", m.Annotations[annotationRefName])
	}
	if err := json.Unmarshal(readBlob(t, dir, m), &l.manifest); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readBlob(t, dir, l.manifest.Config), &l.config); err != nil {
		t.Fatal(err)
	}
	if len(l.manifest.Layers) != 2 || len(l.config.RootFS.DiffIDs) != 2 {
		t.Fatalf("%d layers, %d diff ids, want 2", len(l.manifest.Layers), len(l.config.RootFS.DiffIDs))
	}
	for i, d := range l.manifest.Layers {
		hdrs, diffID := readLayer(t, readBlob(t, dir, d))
		if diffID != l.config.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d: diff id %s, config says %s", i, diffID, l.config.RootFS.DiffIDs[i])
		}
		l.layers = append(l.layers, hdrs)
	}
	return l
}

// readLayer decompresses a layer and returns its headers and diff id.
func readLayer(t *testing.T, blob []byte) ([]*tar.Header, string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Fatalf("gzip header has name %q time %v", zr.Name, zr.ModTime)
	}
	h := sha256.New()
	tr := tar.NewReader(io.TeeReader(zr, h))
	var hdrs []*tar.Header
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, hdr)
	}
	_, _ = io.Copy(io.Discard, zr)
	return hdrs, "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func find(hdrs []*tar.Header, name string) *tar.Header {
	for _, h := range hdrs {
		if strings.TrimSuffix(h.Name, "/") == name {
			return h
		}
	}
	return nil
}

func TestBuildIsReproducible(t *testing.T) {
	for _, o := range []Options{{}, {Busybox: "none"}} {
		a, b := build(t, o), build(t, o)
		da, err := ManifestDigest(a)
		if err != nil {
			t.Fatal(err)
		}
		db, err := ManifestDigest(b)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("options %+v: manifest digest %s then %s", o, da, db)
		if da != db {
			t.Fatalf("options %+v: two builds gave %s and %s", o, da, db)
		}
		ia, _ := os.ReadFile(filepath.Join(a, "index.json"))
		ib, _ := os.ReadFile(filepath.Join(b, "index.json"))
		if !bytes.Equal(ia, ib) {
			t.Fatalf("index.json differs:\n%s\n%s", ia, ib)
		}
		if got := load(t, a).index.Manifests[0].Digest; got != da {
			t.Fatalf("index names %s, marker %s", got, da)
		}
	}
}

func TestBuildReusesCompleteLayout(t *testing.T) {
	dir := build(t, Options{})
	before, err := os.Stat(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("a complete layout was rebuilt")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".*tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary dirs left: %v", leftovers)
	}
}

func TestBuildReplacesUnfinishedLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	load(t, dir)
}

func TestImageConfigAndBaseLayer(t *testing.T) {
	l := load(t, build(t, Options{}))
	c := l.config
	wantArch, _ := ociArch()
	if c.OS != "linux" || c.Architecture != wantArch || runtime.GOARCH == "" {
		t.Fatalf("platform %s/%s", c.OS, c.Architecture)
	}
	if strings.Join(c.Config.Cmd, " ") != "/bin/sh" || len(c.Config.Env) != 1 || c.Config.Env[0] != "PATH="+defaultPath {
		t.Fatalf("config %+v", c.Config)
	}
	base := l.layers[0]
	for _, h := range append(base, l.layers[1]...) {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(epoch()) {
			t.Fatalf("%s: owner %d:%d %q time %v", h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
	}
	for name, mode := range map[string]int64{"tmp": 0o1777, "root": 0o700, "proc": 0o555, "etc/passwd": 0o644, "bin": 0o755} {
		h := find(base, name)
		if h == nil || h.Mode != mode {
			t.Fatalf("base layer %s: %+v, want mode %o", name, h, mode)
		}
	}
	for i := 1; i < len(base); i++ {
		if base[i-1].Name >= base[i].Name {
			t.Fatalf("entries not sorted: %s before %s", base[i-1].Name, base[i].Name)
		}
	}
}

func TestBusyboxLayer(t *testing.T) {
	requireBusybox(t)
	tools := load(t, build(t, Options{})).layers[1]
	bb := find(tools, "bin/busybox")
	if bb == nil || bb.Typeflag != tar.TypeReg || bb.Mode&0o111 == 0 {
		t.Fatalf("bin/busybox: %+v", bb)
	}
	for _, applet := range []string{"sh", "ls", "cat", "echo", "env", "id", "sleep", "true", "false", "ps", "mount", "grep", "["} {
		h := find(tools, "bin/"+applet)
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Fatalf("bin/%s: %+v", applet, h)
		}
	}
}

func TestHostToolsLayer(t *testing.T) {
	tools := load(t, build(t, Options{Busybox: "none"})).layers[1]
	if find(tools, "bin/busybox") != nil {
		t.Fatal("busybox in a build without busybox")
	}
	for _, name := range []string{"bin/sh", "bin/ls", "bin/cat"} {
		if find(tools, name) == nil {
			t.Fatalf("%s missing", name)
		}
	}
	// The real shell's loader and libc must be there, at the paths the
	// binary asks for.
	sh, _, err := realFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if static, _ := isStatic(sh); static {
		return
	}
	var libc bool
	for _, h := range tools {
		if strings.HasPrefix(filepath.Base(h.Name), "libc.so") {
			libc = true
		}
	}
	if !libc {
		t.Fatalf("no libc in the tools layer: %v", names(tools))
	}
}

func names(hdrs []*tar.Header) []string {
	var out []string
	for _, h := range hdrs {
		out = append(out, h.Name)
	}
	return out
}

func TestExplicitMissingBusyboxFails(t *testing.T) {
	_, err := BuildWith(context.Background(), filepath.Join(t.TempDir(), "l"), Options{Busybox: "/nonexistent/busybox"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

// unpack applies the layout's layers into dest with Go's tar reader (the
// built-in image has no whiteouts).
func unpack(t *testing.T, dir, dest string) {
	t.Helper()
	l := load(t, dir)
	for _, d := range l.manifest.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(readBlob(t, dir, d)))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dest, h.Name)
			switch h.Typeflag {
			case tar.TypeDir:
				err = os.MkdirAll(p, 0o755)
			case tar.TypeSymlink:
				err = os.Symlink(h.Linkname, p)
			case tar.TypeReg:
				var data []byte
				if data, err = io.ReadAll(tr); err == nil {
					err = os.WriteFile(p, data, os.FileMode(h.Mode)&0o777)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestImageRuns chroots into the unpacked image and runs its shell and
// tools: proof that the libraries resolved.
func TestImageRuns(t *testing.T) {
	requireRoot(t)
	for _, o := range []Options{{}, {Busybox: "none"}} {
		root := t.TempDir()
		unpack(t, build(t, o), root)
		cmd := exec.Command("/bin/sh", "-c", "cd / && ls /etc >/dev/null && cat /etc/passwd | head -n 1 && echo ok")
		cmd.Env = []string{"PATH=/bin"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), "ok\n") || !strings.HasPrefix(string(out), "root:") {
			t.Fatalf("options %+v: %v: %s", o, err, out)
		}
	}
}

func TestUmociUnpacks(t *testing.T) {
	umoci := requireTool(t, "umoci")
	requireRoot(t)
	for _, o := range []Options{{}, {Busybox: "none"}} {
		dir := build(t, o)
		bundle := filepath.Join(t.TempDir(), "bundle")
		out, err := exec.Command(umoci, "unpack", "--image", dir+":latest", bundle).CombinedOutput()
		if err != nil {
			t.Fatalf("umoci unpack: %v: %s", err, out)
		}
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "sh")); err != nil {
			t.Fatalf("options %+v: %v", o, err)
		}
	}
}

func TestSkopeoInspects(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	dir := build(t, Options{})
	out, err := exec.Command(skopeo, "inspect", "oci:"+dir+":latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v: %s", err, out)
	}
	var info struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want, _ := ManifestDigest(dir)
	if info.Digest != want || len(info.Layers) != 2 {
		t.Fatalf("skopeo sees %+v, want digest %s and 2 layers", info, want)
	}
}
