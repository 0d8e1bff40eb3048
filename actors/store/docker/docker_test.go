package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/fixtures/images"
	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/errdefs"
)

// newStore returns a store in a fresh directory.
func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = filepath.Join(t.TempDir(), "store", "docker")
	}
	o.Logger = zaptest.NewLogger(t)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, s *Store, ref string) store.Image {
	t.Helper()
	img, err := s.Get(context.Background(), ref, "copy", true)
	if err != nil {
		t.Fatalf("Get(%s): %v", ref, err)
	}
	return img
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// checkStandard checks an imported images.Standard image: ids, paths,
// config, and what each layer directory holds (AUFS whiteouts kept as
// files).
func checkStandard(t *testing.T, s *Store, img store.Image, want images.Image) {
	t.Helper()
	if !reflect.DeepEqual(img.LayerIDs, want.DiffIDs) {
		t.Fatalf("layer ids %v, want %v", img.LayerIDs, want.DiffIDs)
	}
	if img.ConfigDigest != want.ConfigDigest {
		t.Fatalf("config digest %s, want %s", img.ConfigDigest, want.ConfigDigest)
	}
	for i, id := range img.LayerIDs {
		if wantPath := filepath.Join(s.dir, "layers", id, "rootfs"); img.Layers[i] != wantPath {
			t.Fatalf("layer %d at %s, want %s", i, img.Layers[i], wantPath)
		}
	}
	c := img.Config
	if strings.Join(c.Entrypoint, " ") != "/bin/tool" || strings.Join(c.Cmd, " ") != "--flag" || c.WorkingDir != "/a" ||
		c.User != "1000:1000" || c.Labels["org.berth.test"] != "standard" || c.OS != "linux" || c.Architecture != runtime.GOARCH ||
		strings.Join(c.Env, ",") != "PATH=/bin,A=1" {
		t.Fatalf("config %+v", c)
	}
	if img.Created.Year() != 2024 || img.Size == 0 {
		t.Fatalf("created %v size %d", img.Created, img.Size)
	}
	l0, l1 := img.Layers[0], img.Layers[1]
	if readFile(t, filepath.Join(l0, "etc/hello")) != "hello\n" || readFile(t, filepath.Join(l0, "a/b/c")) != "c1" {
		t.Fatal("layer 0 content")
	}
	if link, err := os.Readlink(filepath.Join(l0, "link")); err != nil || link != "etc/hello" {
		t.Fatalf("symlink: %q %v", link, err)
	}
	a, _ := os.Stat(filepath.Join(l0, "etc/hello"))
	b, _ := os.Stat(filepath.Join(l0, "hard"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Fatal("hard is not a hardlink of etc/hello")
	}
	for _, p := range []string{".wh.del.txt", ".wh.d", "o/.wh..wh..opq", "o/new", "new.txt"} {
		if !exists(filepath.Join(l1, p)) {
			t.Fatalf("layer 1 lacks %s", p)
		}
	}
	if readFile(t, filepath.Join(l1, "a/b/c")) != "c2" || exists(filepath.Join(l1, "o/old")) {
		t.Fatal("layer 1 content")
	}
}

func TestImportDockerArchive(t *testing.T) {
	for _, format := range []images.ArchiveFormat{images.ArchiveModern, images.ArchiveLegacy} {
		t.Run(format.String(), func(t *testing.T) {
			s := newStore(t, Options{})
			built, err := images.DockerArchive(filepath.Join(t.TempDir(), "test.tar"), images.Standard("berth/test:v1"), format)
			if err != nil {
				t.Fatal(err)
			}
			img := get(t, s, "docker-archive:"+built.Path)
			checkStandard(t, s, img, built.Images[0])
			if img.Reference != "docker.io/berth/test:v1" || img.Source != "docker-archive:"+built.Path || img.Digest != img.ConfigDigest {
				t.Fatalf("reference %s source %s digest %s", img.Reference, img.Source, img.Digest)
			}
			// By name now, without a source.
			if again := get(t, s, "berth/test:v1"); !reflect.DeepEqual(again, img) {
				t.Fatalf("by name: %+v", again)
			}
		})
	}
}

// TestImportLegacyRepeatedLayer: Docker writes a repeated layer as a
// symlink to the first copy; the store follows it and extracts once.
func TestImportLegacyRepeatedLayer(t *testing.T) {
	s := newStore(t, Options{})
	spec := images.Standard("berth/rep:latest")
	spec.Layers = append(spec.Layers, spec.Layers[0])
	built, err := images.DockerArchive(filepath.Join(t.TempDir(), "rep.tar"), spec, images.ArchiveLegacy)
	if err != nil {
		t.Fatal(err)
	}
	img := get(t, s, "docker-archive:"+built.Path)
	if len(img.LayerIDs) != 3 || img.LayerIDs[0] != img.LayerIDs[2] {
		t.Fatalf("layer ids %v", img.LayerIDs)
	}
	if n := s.extractions.Load(); n != 2 {
		t.Fatalf("%d extractions, want 2", n)
	}
}

func TestImportOCILayout(t *testing.T) {
	s := newStore(t, Options{})
	dir := t.TempDir()
	built, err := images.OCILayout(dir, "v1", images.Standard(""))
	if err != nil {
		t.Fatal(err)
	}
	img := get(t, s, "oci:"+dir)
	checkStandard(t, s, img, built.Images[0])
	if img.Digest != built.Digest || img.Reference != "oci:"+dir || img.Source != "oci:"+dir {
		t.Fatalf("digest %s reference %s source %s", img.Digest, img.Reference, img.Source)
	}
	tagged := get(t, s, "oci:"+dir+":v1")
	if tagged.Digest != built.Digest || tagged.Source != "oci:"+dir+":v1" {
		t.Fatalf("tagged: %+v", tagged)
	}
	if n := s.extractions.Load(); n != 2 {
		t.Fatalf("%d extractions, want 2 (layers are shared by content)", n)
	}

	// A second tag: a tag is needed now, and an unknown one is not found.
	if _, err := images.OCILayout(dir, "v2", images.Small("", "two")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "oci:"+dir, "copy", false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("untagged Get of a two-image layout: %v", err)
	}
	if _, err := s.Get(context.Background(), "oci:"+dir+":v3", "copy", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown tag: %v", err)
	}
	if v2 := get(t, s, "oci:"+dir+":v2"); readFile(t, filepath.Join(v2.Layers[0], "hello")) != "two" {
		t.Fatal("v2 content")
	}
}

func TestImportOCIMultiArch(t *testing.T) {
	s := newStore(t, Options{})
	dir := t.TempDir()
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	foreign, native := images.Small("", "foreign"), images.Small("", "native")
	foreign.Architecture = other
	built, err := images.OCILayout(dir, "multi", foreign, native)
	if err != nil {
		t.Fatal(err)
	}
	img := get(t, s, "oci:"+dir+":multi")
	if img.Digest != built.Images[1].ManifestDigest || readFile(t, filepath.Join(img.Layers[0], "hello")) != "native" {
		t.Fatalf("picked %s, want the %s image %s", img.Digest, runtime.GOARCH, built.Images[1].ManifestDigest)
	}

	only := t.TempDir()
	if _, err := images.OCILayout(only, "x", foreign, foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "oci:"+only, "copy", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("no image for this platform: %v", err)
	}
}

func TestImportBuiltin(t *testing.T) {
	s := newStore(t, Options{Builtin: builtin.Build, BuiltinReference: builtin.Reference})
	img := get(t, s, builtin.Reference)
	if img.Reference != builtin.Reference || img.Source != "builtin" || len(img.Layers) != 2 {
		t.Fatalf("%+v", img)
	}
	if strings.Join(img.Config.Cmd, " ") != "/bin/sh" || !exists(filepath.Join(img.Layers[1], "bin", "sh")) {
		t.Fatalf("config %+v", img.Config)
	}
	want, err := builtin.ManifestDigest(filepath.Join(s.dir, "builtin"))
	if err != nil || img.Digest != want {
		t.Fatalf("digest %s, layout says %s (%v)", img.Digest, want, err)
	}
	if again := get(t, s, "localhost/berth/default"); again.Digest != img.Digest || s.importRuns.Load() != 1 {
		t.Fatalf("cached Get imported again (%d imports)", s.importRuns.Load())
	}
}

func TestNamesAndTarballDir(t *testing.T) {
	tarballs := t.TempDir()
	if _, err := images.DockerArchive(filepath.Join(tarballs, "busybox:latest.tar"), images.Small("busybox:latest", "bb"), images.ArchiveModern); err != nil {
		t.Fatal(err)
	}
	if _, err := images.DockerArchive(filepath.Join(tarballs, "quay.io", "a", "b:v1.tar"), images.Small("quay.io/a/b:v1", "qb"), images.ArchiveLegacy); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, Options{TarballDir: tarballs})
	for _, ref := range []string{"busybox", "library/busybox:latest", "docker.io/library/busybox"} {
		img := get(t, s, ref)
		if img.Reference != "docker.io/library/busybox:latest" || readFile(t, filepath.Join(img.Layers[0], "hello")) != "bb" {
			t.Fatalf("%s: %+v", ref, img)
		}
	}
	if s.importRuns.Load() != 1 {
		t.Fatalf("%d imports, want 1", s.importRuns.Load())
	}
	if img := get(t, s, "quay.io/a/b:v1"); img.Reference != "quay.io/a/b:v1" {
		t.Fatalf("%+v", img)
	}
	img := get(t, s, "busybox")
	if byDigest := get(t, s, "busybox@"+img.Digest); byDigest.Digest != img.Digest {
		t.Fatalf("by digest: %+v", byDigest)
	}
	_, err := s.Get(context.Background(), "alpine", "copy", true)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "docker.io/library/alpine:latest") || !strings.Contains(err.Error(), "no registry is configured") {
		t.Fatalf("unknown name: %v", err)
	}
}

// TestConcurrentGets: 16 Gets of one new image make one import and one
// extraction per layer.
func TestConcurrentGets(t *testing.T) {
	s := newStore(t, Options{})
	built, err := images.DockerArchive(filepath.Join(t.TempDir(), "c.tar"), images.Standard("berth/c:latest"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	digests := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := s.Get(context.Background(), "docker-archive:"+built.Path, "copy", true)
			errs <- err
			digests <- img.Digest
		}()
	}
	wg.Wait()
	close(errs)
	close(digests)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for d := range digests {
		if d != built.Images[0].ConfigDigest {
			t.Fatalf("digest %s", d)
		}
	}
	if s.importRuns.Load() != 1 || s.extractions.Load() != 2 || s.stagingCreated.Load() != 2 {
		t.Fatalf("imports %d, extractions %d, staging dirs %d; want 1, 2, 2", s.importRuns.Load(), s.extractions.Load(), s.stagingCreated.Load())
	}
	checkClean(t, s, built.Images[0].DiffIDs)
}

// checkClean asserts staging is empty and every layer directory is a
// complete layer with one of the given ids.
func checkClean(t *testing.T, s *Store, ids []string) {
	t.Helper()
	staged, err := os.ReadDir(s.stagingDir)
	if err != nil || len(staged) != 0 {
		t.Fatalf("staging holds %v (%v)", staged, err)
	}
	allowed := map[string]bool{}
	for _, id := range ids {
		allowed[id] = true
	}
	layers, err := os.ReadDir(s.layersDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if !allowed[l.Name()] || !exists(filepath.Join(s.layersDir, l.Name(), "rootfs")) || !exists(filepath.Join(s.layersDir, l.Name(), sizeFile)) {
			t.Fatalf("unexpected or half layer %s", l.Name())
		}
	}
}

func TestPersistedMetadata(t *testing.T) {
	s := newStore(t, Options{})
	dir := t.TempDir()
	if _, err := images.OCILayout(dir, "v1", images.Standard("")); err != nil {
		t.Fatal(err)
	}
	img := get(t, s, "oci:"+dir+":v1")
	s2 := newStore(t, Options{Dir: s.dir})
	list, err := s2.List(context.Background())
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], img) {
		t.Fatalf("a new store lists %+v (%v), want %+v", list, err, img)
	}
	if again := get(t, s2, "oci:"+dir+":v1"); s2.importRuns.Load() != 0 || again.Digest != img.Digest {
		t.Fatal("a cached image was imported again")
	}
}

func TestRecover(t *testing.T) {
	s := newStore(t, Options{})
	a, err := images.DockerArchive(filepath.Join(t.TempDir(), "a.tar"), images.Small("berth/a:latest", "a"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	b, err := images.DockerArchive(filepath.Join(t.TempDir(), "b.tar"), images.Small("berth/b:latest", "b"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	get(t, s, "docker-archive:"+a.Path)
	imgB := get(t, s, "docker-archive:"+b.Path)
	if err := os.RemoveAll(filepath.Dir(imgB.Layers[0])); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.stagingDir, "layer-leftover", "rootfs", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, Options{Dir: s.dir})
	res, err := s2.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Images != 1 || !reflect.DeepEqual(res.Dropped, []string{"docker.io/berth/b:latest"}) {
		t.Fatalf("recover: %+v", res)
	}
	if left, _ := os.ReadDir(s2.stagingDir); len(left) != 0 {
		t.Fatalf("staging not emptied: %v", left)
	}
	// The drop is persisted.
	s3 := newStore(t, Options{Dir: s.dir})
	if list, _ := s3.List(context.Background()); len(list) != 1 || list[0].Reference != "docker.io/berth/a:latest" {
		t.Fatalf("after recover: %+v", list)
	}
	// And the image comes back when asked for.
	if img := get(t, s2, "docker-archive:"+b.Path); !exists(img.Layers[0]) {
		t.Fatal("re-import failed")
	}
}

func TestRecoverCorruptMetadata(t *testing.T) {
	s := newStore(t, Options{})
	if err := os.WriteFile(s.metaPath, []byte("\xff\xff not a protobuf"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := s.Recover(context.Background())
	if err != nil || res.Images != 0 {
		t.Fatalf("recover of corrupt metadata: %+v %v", res, err)
	}
	aside, _ := filepath.Glob(s.metaPath + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt file not moved aside: %v", aside)
	}
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("list %v %v", list, err)
	}
}

func TestPrune(t *testing.T) {
	s := newStore(t, Options{})
	a, err := images.DockerArchive(filepath.Join(t.TempDir(), "a.tar"), images.Small("berth/a:latest", "a"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	b, err := images.DockerArchive(filepath.Join(t.TempDir(), "b.tar"), images.Standard("berth/b:latest"), images.ArchiveLegacy)
	if err != nil {
		t.Fatal(err)
	}
	imgA := get(t, s, "docker-archive:"+a.Path)
	imgB := get(t, s, "docker-archive:"+b.Path)

	res, err := s.Prune(context.Background(), []string{"berth/a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.RemovedImages, []string{"docker.io/berth/b:latest"}) || len(res.RemovedLayers) != 2 || res.ReclaimedBytes == 0 {
		t.Fatalf("prune: %+v", res)
	}
	for _, l := range imgB.Layers {
		if exists(l) {
			t.Fatalf("layer %s survived", l)
		}
	}
	if !exists(imgA.Layers[0]) {
		t.Fatal("the excluded image lost its layer")
	}
	// An active layer outlives its image.
	res, err = s.Prune(context.Background(), nil, []string{imgA.Layers[0]})
	if err != nil || len(res.RemovedImages) != 1 || len(res.RemovedLayers) != 0 || !exists(imgA.Layers[0]) {
		t.Fatalf("prune with an active layer: %+v %v", res, err)
	}
	res, err = s.Prune(context.Background(), nil, nil)
	if err != nil || len(res.RemovedLayers) != 1 || exists(imgA.Layers[0]) {
		t.Fatalf("final prune: %+v %v", res, err)
	}
	checkClean(t, s, nil)
}

func TestRemove(t *testing.T) {
	s := newStore(t, Options{})
	a, err := images.DockerArchive(filepath.Join(t.TempDir(), "a.tar"), images.Small("berth/a:latest", "a"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(context.Background(), "berth/a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
	get(t, s, "docker-archive:"+a.Path)
	if err := s.Remove(context.Background(), "berth/a"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(context.Background()); len(list) != 0 {
		t.Fatalf("still listed: %+v", list)
	}
	get(t, s, "docker-archive:"+a.Path)
	if err := s.Remove(context.Background(), "docker-archive:"+a.Path); err != nil {
		t.Fatalf("remove by source: %v", err)
	}
}

// TestBrokenImages: every broken variant fails with the right class and
// leaves no staging dir and no half layer.
func TestBrokenImages(t *testing.T) {
	intact := images.Standard("")
	var ids []string
	for _, b := range []images.ArchiveFormat{images.ArchiveModern} {
		built, err := images.DockerArchive(filepath.Join(t.TempDir(), "i.tar"), intact, b)
		if err != nil {
			t.Fatal(err)
		}
		ids = built.Images[0].DiffIDs
	}
	type tc struct {
		name  string
		brk   images.Breakage
		write func(dir string, s images.Spec) (string, error)
		want  string
	}
	archive := func(f images.ArchiveFormat) func(string, images.Spec) (string, error) {
		return func(dir string, s images.Spec) (string, error) {
			b, err := images.DockerArchive(filepath.Join(dir, "x.tar"), s, f)
			return "docker-archive:" + b.Path, err
		}
	}
	oci := func(dir string, s images.Spec) (string, error) {
		_, err := images.OCILayout(dir, "t", s)
		return "oci:" + dir + ":t", err
	}
	var cases []tc
	for _, w := range []struct {
		name  string
		write func(string, images.Spec) (string, error)
	}{{"modern", archive(images.ArchiveModern)}, {"legacy", archive(images.ArchiveLegacy)}, {"oci", oci}} {
		cases = append(cases,
			tc{w.name + "/malformed-config", images.MalformedConfig, w.write, "config"},
			tc{w.name + "/missing-layer", images.MissingLayer, w.write, "missing"},
			tc{w.name + "/diffid-mismatch", images.DiffIDMismatch, w.write, "diff id"},
			tc{w.name + "/blob-digest-mismatch", images.BlobDigestMismatch, w.write, "digest"},
		)
	}
	cases = append(cases, tc{"oci/unsupported-media-type", images.UnsupportedMediaType, oci, "unsupported media type"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, Options{})
			spec := images.Standard("")
			spec.Break = c.brk
			ref, err := c.write(t.TempDir(), spec)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Get(context.Background(), ref, "copy", true)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Get: %v; want ErrInvalidArgument mentioning %q", err, c.want)
			}
			checkClean(t, s, ids)
			if list, _ := s.List(context.Background()); len(list) != 0 {
				t.Fatalf("a broken image was stored: %+v", list)
			}
		})
	}
}

func TestMissingSources(t *testing.T) {
	s := newStore(t, Options{TarballDir: t.TempDir()})
	dir := t.TempDir()
	for _, ref := range []string{"docker-archive:" + dir + "/none.tar", "oci:" + dir + "/none", "oci:" + dir + "/none:v1", "busybox"} {
		_, err := s.Get(context.Background(), ref, "copy", true)
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), strings.TrimPrefix(strings.TrimPrefix(strings.Split(ref, ":v1")[0], "docker-archive:"), "oci:")) {
			t.Fatalf("Get(%s) = %v, want ErrNotFound naming the path", ref, err)
		}
	}
	garbage := filepath.Join(dir, "garbage.tar")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a tar ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "docker-archive:"+garbage, "copy", true); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("garbage archive: %v", err)
	}
}

// TestOwnership: as root, extraction gives entries their owners.
func TestOwnership(t *testing.T) {
	actortest.RequiresRoot(t)
	s := newStore(t, Options{})
	built, err := images.DockerArchive(filepath.Join(t.TempDir(), "o.tar"), images.Standard("berth/o:latest"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	img := get(t, s, "docker-archive:"+built.Path)
	fi, err := os.Lstat(filepath.Join(img.Layers[0], "owned"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Fatalf("owned is %d:%d, want 1000:1000", st.Uid, st.Gid)
	}
}

// TestSkopeoArchive imports an archive written by skopeo from the built-in
// image's layout.
func TestSkopeoArchive(t *testing.T) {
	skopeo := actortest.RequiresTool(t, "skopeo", "apt-get install skopeo")
	layout, err := builtin.Build(context.Background(), filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "skopeo.tar")
	out, err := exec.Command(skopeo, "copy", "oci:"+layout+":latest", "docker-archive:"+tarball+":berth/test:latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	s := newStore(t, Options{})
	img := get(t, s, "docker-archive:"+tarball)
	if img.Reference != "docker.io/berth/test:latest" || len(img.Layers) != 2 || !exists(filepath.Join(img.Layers[1], "bin", "sh")) {
		t.Fatalf("%+v", img)
	}
	fmt.Fprintln(os.Stderr, "skopeo archive imported:", img.Digest)
}

// TestOverlayForm: the overlay backend gets its own copy of each layer, in
// overlayfs's whiteout form, beside the AUFS one; an image used only with
// overlay survives recovery.
func TestOverlayForm(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (mknod, trusted.* xattrs)")
		}
		t.Skip("needs root: run as root")
	}
	s := newStore(t, Options{})
	built, err := images.DockerArchive(filepath.Join(t.TempDir(), "test.tar"), images.Standard("berth/ov:v1"), images.ArchiveModern)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Get(context.Background(), "docker-archive:"+built.Path, "overlay", true)
	if err != nil {
		t.Fatal(err)
	}
	top := img.Layers[1]
	if filepath.Base(top) != "rootfs.overlay" {
		t.Fatalf("overlay layer path %s", top)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(top, "del.txt"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("del.txt in overlay form: %v, mode %o; want a 0/0 character device", err, st.Mode)
	}
	buf := make([]byte, 2)
	if n, err := syscall.Getxattr(filepath.Join(top, "o"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("o: trusted.overlay.opaque = %q, %v", buf[:n], err)
	}
	if exists(filepath.Join(filepath.Dir(top), "rootfs")) {
		t.Error("the AUFS form was extracted too")
	}
	s2 := newStore(t, Options{Dir: s.dir})
	res, err := s2.Recover(context.Background())
	if err != nil || len(res.Dropped) != 0 || res.Images != 1 {
		t.Fatalf("recover = %+v, %v; want the overlay-only image kept", res, err)
	}
	copyImg, err := s2.Get(context.Background(), "berth/ov:v1", "copy", true)
	if err != nil || filepath.Base(copyImg.Layers[1]) != "rootfs" || !exists(filepath.Join(copyImg.Layers[1], ".wh.del.txt")) {
		t.Fatalf("copy form after overlay: %+v, %v", copyImg.Layers, err)
	}
}
