package appc

import (
	"archive/tar"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/fixtures/aci"
	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/process/errdefs"
)

// aciServer serves ACIs over HTTP on 127.0.0.1 and counts the requests.
type aciServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

func newACIServer(t *testing.T) *aciServer {
	t.Helper()
	s := &aciServer{files: map[string][]byte{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		data, ok := s.files[r.URL.Path]
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

// put serves spec under the simple discovery name of name, version (and
// the host's os and arch) and returns the built image.
func (s *aciServer) put(t *testing.T, name, version string, spec aci.Spec) aci.Image {
	t.Helper()
	img, err := aci.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.files["/"+name+"-"+version+"-linux-"+HostArch()+".aci"] = img.Data
	s.mu.Unlock()
	return img
}

func (s *aciServer) hitCount(name, version string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits["/"+name+"-"+version+"-linux-"+HostArch()+".aci"]
}

// prefix is the simple discovery prefix of the server.
func (s *aciServer) prefix() string { return s.URL + "/" }

// tempDir is a directory removed at the end of the test.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "berth-test-appc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func newStore(t *testing.T, dir, prefix string) *Store {
	t.Helper()
	s, err := New(Options{Dir: dir, DiscoveryPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// manifest is an image manifest for the host's platform.
func manifest(name, version string, deps ...aci.Dependency) aci.Manifest {
	return aci.Manifest{
		Name:         name,
		Labels:       aci.Labels("version", version, "os", "linux", "arch", HostArch()),
		Dependencies: deps,
	}
}

func dep(name, version string) aci.Dependency {
	return aci.Dependency{ImageName: name, Labels: aci.Labels("version", version)}
}

func file(name, body string) layers.Entry { return layers.Entry{Name: name, Body: body} }

// entries lists the names in dir (nil when it does not exist).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestGetDiscoversDependenciesAndCaches(t *testing.T) {
	srv := newACIServer(t)
	base := srv.put(t, "example.com/base", "2", aci.Spec{
		Manifest: manifest("example.com/base", "2"),
		Files:    []layers.Entry{file("etc/base", "from base\n"), file("etc/shadowed", "base\n")},
	})
	app := aci.Manifest{
		Name:         "example.com/hello",
		Labels:       aci.Labels("version", "1.0.0", "os", "linux", "arch", HostArch()),
		Dependencies: []aci.Dependency{dep("example.com/base", "2")},
		App: &aci.App{
			Exec: []string{"/bin/hello", "--loud"}, User: "nobody", Group: "nogroup", WorkingDirectory: "/srv",
			Environment: aci.Labels("GREETING", "hi there", "EMPTY", ""),
		},
	}
	hello := srv.put(t, "example.com/hello", "1.0.0", aci.Spec{Manifest: app, Compression: "gzip",
		Files: []layers.Entry{file("etc/shadowed", "hello\n"), file("srv/data", "x")}})
	dir := tempDir(t)
	s := newStore(t, dir, srv.prefix())
	ctx := context.Background()

	// Concurrent Gets fetch each image once.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Get(ctx, "appc:example.com/hello:1.0.0", "overlay", true)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	img, err := s.Get(ctx, "example.com/hello:1.0.0", "overlay", true)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := srv.hitCount("example.com/hello", "1.0.0"), srv.hitCount("example.com/base", "2"); n != 1 || m != 1 {
		t.Errorf("fetched hello %d times, base %d times; want once each", n, m)
	}
	if img.Digest != hello.ID || len(img.LayerIDs) != 2 || img.LayerIDs[0] != base.ID || img.LayerIDs[1] != hello.ID {
		t.Fatalf("image %s layers %v; want %s over %s", img.Digest, img.LayerIDs, hello.ID, base.ID)
	}
	if img.Reference != "example.com/hello:1.0.0" || img.Source != srv.prefix()+"example.com/hello-1.0.0-linux-"+HostArch()+".aci" {
		t.Errorf("reference %q source %q", img.Reference, img.Source)
	}
	for i, id := range img.LayerIDs {
		if want := filepath.Join(dir, "images", id, "rootfs"); img.Layers[i] != want {
			t.Errorf("layer %d = %s, want %s", i, img.Layers[i], want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(img.Layers[0], "etc/base")); err != nil || string(b) != "from base\n" {
		t.Errorf("base layer: %q %v", b, err)
	}
	c := img.Config
	if strings.Join(c.Entrypoint, " ") != "/bin/hello --loud" || c.WorkingDir != "/srv" || c.User != "nobody:nogroup" ||
		strings.Join(c.Env, ";") != "GREETING=hi there;EMPTY=" || c.OS != "linux" || c.Architecture != HostArch() || c.Labels["version"] != "1.0.0" {
		t.Errorf("config %+v", c)
	}
	for _, id := range []string{base.ID, hello.ID} {
		if got := entries(t, filepath.Join(dir, "images", id)); strings.Join(got, ",") != "info,manifest,rootfs" {
			t.Errorf("%s holds %v", id, got)
		}
	}
	if got := entries(t, filepath.Join(dir, "staging")); len(got) != 0 {
		t.Errorf("staging holds %v", got)
	}

	// By id, from a fresh store over the same directory: no fetch.
	s2 := newStore(t, dir, srv.prefix())
	if _, err := s2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	byID, err := s2.Get(ctx, "appc:"+hello.ID, "copy", true)
	if err != nil || strings.Join(byID.LayerIDs, ",") != base.ID+","+hello.ID {
		t.Fatalf("by id: %v %v", byID.LayerIDs, err)
	}
	// Without a version the stored one matches; cached=false fetches "latest".
	if _, err := s2.Get(ctx, "example.com/hello", "copy", true); err != nil {
		t.Errorf("by name without version: %v", err)
	}
	if _, err := s2.Get(ctx, "example.com/hello", "copy", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("uncached without version: %v; want not found (no -latest- served)", err)
	}
	if srv.hitCount("example.com/hello", "1.0.0") != 1 {
		t.Error("the stored image was fetched again")
	}
	list, err := s2.List(ctx)
	if err != nil || len(list) != 2 || list[0].Reference != "example.com/base:2" || len(list[1].LayerIDs) != 2 {
		t.Errorf("list %+v %v", list, err)
	}
}

func TestDependencyOrderAndSharing(t *testing.T) {
	srv := newACIServer(t)
	b := srv.put(t, "b", "1", aci.Spec{Manifest: manifest("b", "1")})
	c := srv.put(t, "c", "1", aci.Spec{Manifest: manifest("c", "1", dep("b", "1"))})
	top := srv.put(t, "top", "1", aci.Spec{Manifest: manifest("top", "1", dep("b", "1"), dep("c", "1"))})
	s := newStore(t, tempDir(t), srv.prefix())
	img, err := s.Get(context.Background(), "top:1", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(img.LayerIDs, ","), strings.Join([]string{b.ID, c.ID, top.ID}, ","); got != want {
		t.Errorf("layers %s, want b, c, top", got)
	}
}

func TestDependencyCycleAndMissing(t *testing.T) {
	srv := newACIServer(t)
	srv.put(t, "a", "1", aci.Spec{Manifest: manifest("a", "1", dep("b", "1"))})
	srv.put(t, "b", "1", aci.Spec{Manifest: manifest("b", "1", dep("a", "1"))})
	srv.put(t, "lonely", "1", aci.Spec{Manifest: manifest("lonely", "1", dep("nowhere", "9"))})
	s := newStore(t, tempDir(t), srv.prefix())
	ctx := context.Background()
	_, err := s.Get(ctx, "a:1", "", true)
	var cycle *CycleError
	if !errors.As(err, &cycle) || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want a *CycleError", err)
	}
	if got := strings.Join(cycle.Chain, " "); got != "a:1 b:1 a:1" {
		t.Errorf("chain %q", got)
	}
	_, err = s.Get(ctx, "lonely:1", "", true)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "dependency nowhere") {
		t.Errorf("err = %v, want not found naming the dependency", err)
	}
	if _, err := s.Get(ctx, "appc:sha512-"+strings.Repeat("0", 128), "", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestPinnedDependencyMismatchStoresNothing(t *testing.T) {
	srv := newACIServer(t)
	wanted, err := aci.Build(aci.Spec{Manifest: manifest("base", "1"), Files: []layers.Entry{file("a", "the real one")}})
	if err != nil {
		t.Fatal(err)
	}
	srv.put(t, "base", "1", aci.Spec{Manifest: manifest("base", "1"), Files: []layers.Entry{file("a", "an impostor")}})
	pinned := aci.Dependency{ImageName: "base", ImageID: wanted.ID, Labels: aci.Labels("version", "1")}
	srv.put(t, "app", "1", aci.Spec{Manifest: manifest("app", "1", pinned)})
	dir := tempDir(t)
	s := newStore(t, dir, srv.prefix())
	_, err = s.Get(context.Background(), "app:1", "", true)
	var mm *IDMismatchError
	if !errors.As(err, &mm) || mm.Want != wanted.ID || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want an *IDMismatchError for %s", err, wanted.ID)
	}
	for _, id := range entries(t, filepath.Join(dir, "images")) {
		img, _ := s.load(id)
		if img.manifest.Name == "base" {
			t.Errorf("the impostor %s was stored", id)
		}
	}
	if got := entries(t, filepath.Join(dir, "staging")); len(got) != 0 {
		t.Errorf("staging holds %v", got)
	}
	// With the right content served, the pin resolves.
	srv.put(t, "base", "1", aci.Spec{Manifest: manifest("base", "1"), Files: []layers.Entry{file("a", "the real one")}})
	img, err := s.Get(context.Background(), "app:1", "", true)
	if err != nil || img.LayerIDs[0] != wanted.ID {
		t.Errorf("layers %v, %v", img.LayerIDs, err)
	}
}

func TestDiscoveredManifestMustMatch(t *testing.T) {
	srv := newACIServer(t)
	srv.put(t, "hello", "1", aci.Spec{Manifest: manifest("other", "1")})
	srv.put(t, "hello", "2", aci.Spec{Manifest: manifest("hello", "3")})
	dir := tempDir(t)
	s := newStore(t, dir, srv.prefix())
	for _, ref := range []string{"hello:1", "hello:2"} {
		if _, err := s.Get(context.Background(), ref, "", true); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", ref, err)
		}
	}
	if got := entries(t, filepath.Join(dir, "images")); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	s := newStore(t, tempDir(t), "http://192.0.2.1:8080/")
	_, err := s.Get(context.Background(), "hello:1", "", true)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("err = %v, want ErrFailedPrecondition", err)
	}
	// A loopback server redirecting to the network is refused too.
	redirect := httptest.NewServer(http.RedirectHandler("http://192.0.2.1/x.aci", http.StatusFound))
	t.Cleanup(redirect.Close)
	s = newStore(t, tempDir(t), redirect.URL+"/")
	if _, err := s.Get(context.Background(), "hello:1", "", true); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("redirect: err = %v, want ErrFailedPrecondition", err)
	}
}

func TestHostileACIsAreRejected(t *testing.T) {
	if _, err := os.Lstat(layers.Canary); err == nil {
		t.Fatalf("%s exists before the test", layers.Canary)
	}
	good := manifest("evil", "1")
	cases := []struct {
		name  string
		spec  aci.Spec
		class error
	}{
		{"climbs out of rootfs", aci.Spec{Manifest: good, Top: []layers.Entry{file("rootfs/../../x", "escape")}}, errdefs.ErrInvalidArgument},
		{"symlink then write through it", aci.Spec{Manifest: good, Files: []layers.Entry{
			{Name: "evil", Type: tar.TypeSymlink, Link: "/tmp"}, file("evil/"+filepath.Base(layers.Canary), "x")}}, errdefs.ErrInvalidArgument},
		{"absolute symlink rootfs", aci.Spec{Manifest: good, Top: []layers.Entry{{Name: "rootfs", Type: tar.TypeSymlink, Link: "/tmp"}}}, errdefs.ErrInvalidArgument},
		{"hard link out", aci.Spec{Manifest: good, Files: []layers.Entry{{Name: "pw", Type: tar.TypeLink, Link: "/etc/passwd"}}}, errdefs.ErrInvalidArgument},
		{"device node", aci.Spec{Manifest: good, Files: []layers.Entry{{Name: "sda", Type: tar.TypeBlock, Major: 8}}}, errdefs.ErrInvalidArgument},
		{"extra top-level file", aci.Spec{Manifest: good, Top: []layers.Entry{file("README", "hi")}}, errdefs.ErrInvalidArgument},
		{"escape to the top via ..", aci.Spec{Manifest: good, Top: []layers.Entry{file("rootfs/../extra", "x")}}, errdefs.ErrInvalidArgument},
		{"no manifest", aci.Spec{NoManifest: true}, errdefs.ErrInvalidArgument},
		{"manifest symlink", aci.Spec{NoManifest: true, Top: []layers.Entry{{Name: "manifest", Type: tar.TypeSymlink, Link: "/etc/passwd"}}}, errdefs.ErrInvalidArgument},
		{"bad manifest", aci.Spec{RawManifest: []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"evil","app":{"exec":["rel"],"user":"0","group":"0"}}`)}, errdefs.ErrInvalidArgument},
		{"truncated gzip", aci.Spec{Manifest: good, Compression: "gzip"}, errdefs.ErrInvalidArgument},
	}
	srv := newACIServer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := aci.Build(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			data := img.Data
			if c.name == "truncated gzip" {
				data = data[:len(data)/2]
			}
			srv.mu.Lock()
			srv.files["/evil-1-linux-"+HostArch()+".aci"] = data
			srv.mu.Unlock()
			dir := tempDir(t)
			s := newStore(t, dir, srv.prefix())
			_, err = s.Get(context.Background(), "evil:1", "", true)
			if !errors.Is(err, c.class) {
				t.Fatalf("err = %v, want %v", err, c.class)
			}
			t.Log(err)
			if got := entries(t, filepath.Join(dir, "images")); len(got) != 0 {
				t.Errorf("stored %v", got)
			}
			if got := entries(t, filepath.Join(dir, "staging")); len(got) != 0 {
				t.Errorf("staging holds %v", got)
			}
			if got := entries(t, dir); strings.Join(got, ",") != "images,import,removed,staging" {
				t.Errorf("store dir holds %v", got)
			}
			if _, err := os.Lstat(layers.Canary); err == nil {
				_ = os.Remove(layers.Canary)
				t.Errorf("%s was written outside the store", layers.Canary)
			}
		})
	}
}

func TestCompressions(t *testing.T) {
	spec := aci.Spec{Manifest: manifest("z", "1"), Files: []layers.Entry{file("f", "content")}}
	plain, err := aci.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"gzip", "zstd"} {
		spec.Compression = kind
		srv := newACIServer(t)
		img := srv.put(t, "z", "1", spec)
		got, err := newStore(t, tempDir(t), srv.prefix()).Get(context.Background(), "z:1", "", true)
		if err != nil || got.Digest != plain.ID || img.ID != plain.ID {
			t.Errorf("%s: %s, %v; want the id of the uncompressed tar %s", kind, got.Digest, err, plain.ID)
		}
	}
	// xz is refused with a hint.
	srv := newACIServer(t)
	srv.files["/z-1-linux-"+HostArch()+".aci"] = append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, plain.Tar...)
	if _, err := newStore(t, tempDir(t), srv.prefix()).Get(context.Background(), "z:1", "", true); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("xz: %v", err)
	}
}

func TestImportDirectory(t *testing.T) {
	dir := tempDir(t)
	s := newStore(t, dir, "")
	good, err := aci.Write(filepath.Join(s.ImportDir(), "good.aci"), aci.Spec{Manifest: manifest("dropped", "1"), Compression: "gzip"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aci.Write(filepath.Join(s.ImportDir(), "bad.aci"), aci.Spec{Manifest: manifest("bad", "1"), Top: []layers.Entry{file("extra", "")}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Recover(context.Background())
	if err != nil || res.Images != 1 {
		t.Fatalf("recover: %+v %v", res, err)
	}
	if got := strings.Join(entries(t, s.ImportDir()), ","); got != "bad.aci.rejected" {
		t.Errorf("import dir holds %s", got)
	}
	img, err := s.Get(context.Background(), good.ID, "", true)
	if err != nil || img.Reference != "dropped:1" || img.Source != "file://"+filepath.Join(s.ImportDir(), "good.aci") {
		t.Errorf("%+v %v", img, err)
	}
	// A file dropped while running is found when a Get misses.
	late, err := aci.Write(filepath.Join(s.ImportDir(), "late.aci"), aci.Spec{Manifest: manifest("late", "1")})
	if err != nil {
		t.Fatal(err)
	}
	if img, err := s.Get(context.Background(), "late", "", true); err != nil || img.Digest != late.ID {
		t.Errorf("late: %v %v", img.Digest, err)
	}
	if _, err := s.Get(context.Background(), "absent", "", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("absent with discovery off: %v", err)
	}
}

func TestRecoverDropsIncompleteImages(t *testing.T) {
	dir := tempDir(t)
	s := newStore(t, dir, "")
	good, err := aci.Write(filepath.Join(s.ImportDir(), "good.aci"), aci.Spec{Manifest: manifest("good", "1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Mesos's layout made by hand: adopted.
	hand := "sha512-" + strings.Repeat("1", 128)
	mustWrite(t, filepath.Join(dir, "images", hand, "manifest"), `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"byhand"}`)
	mustWrite(t, filepath.Join(dir, "images", hand, "rootfs", "f"), "12345")
	// Broken ones: dropped.
	noRootfs := "sha512-" + strings.Repeat("2", 128)
	mustWrite(t, filepath.Join(dir, "images", noRootfs, "manifest"), `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x"}`)
	badManifest := "sha512-" + strings.Repeat("3", 128)
	mustWrite(t, filepath.Join(dir, "images", badManifest, "manifest"), `{`)
	mustWrite(t, filepath.Join(dir, "images", badManifest, "rootfs", "f"), "")
	mustWrite(t, filepath.Join(dir, "images", "not-an-id", "manifest"), "")
	// A crash mid-extraction leaves a staging directory.
	mustWrite(t, filepath.Join(dir, "staging", "aci-123", "rootfs", "half"), "")

	s2 := newStore(t, dir, "")
	res, err := s2.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Images != 2 || strings.Join(res.Dropped, ",") != strings.Join([]string{"not-an-id", noRootfs, badManifest}, ",") {
		t.Errorf("recover %+v", res)
	}
	if got := entries(t, filepath.Join(dir, "staging")); len(got) != 0 {
		t.Errorf("staging holds %v", got)
	}
	if got := entries(t, filepath.Join(dir, "images")); strings.Join(got, ",") != hand+","+good.ID && strings.Join(got, ",") != good.ID+","+hand {
		t.Errorf("images %v", got)
	}
	img, err := s2.Get(context.Background(), "byhand", "", true)
	if err != nil || img.Size != 5 || img.Source != "local" {
		t.Errorf("hand-made image: %+v %v", img, err)
	}
}

func mustWrite(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveAndPrune(t *testing.T) {
	srv := newACIServer(t)
	base := srv.put(t, "base", "1", aci.Spec{Manifest: manifest("base", "1"), Files: []layers.Entry{file("b", "bbbb")}})
	app := srv.put(t, "app", "1", aci.Spec{Manifest: manifest("app", "1", dep("base", "1"))})
	other := srv.put(t, "other", "1", aci.Spec{Manifest: manifest("other", "1"), Files: []layers.Entry{file("o", "oo")}})
	dir := tempDir(t)
	s := newStore(t, dir, srv.prefix())
	ctx := context.Background()
	for _, ref := range []string{"app:1", "other:1"} {
		if _, err := s.Get(ctx, ref, "", true); err != nil {
			t.Fatal(err)
		}
	}
	// Excluding app keeps its dependency; other goes.
	res, err := s.Prune(ctx, []string{"app:1", "busybox:latest"}, nil)
	if err != nil || strings.Join(res.RemovedLayers, ",") != other.ID || res.ReclaimedBytes != 2 {
		t.Fatalf("prune %+v %v", res, err)
	}
	// Remove takes app out at once; its directory waits in removed/ while a
	// container uses it.
	if err := s.Remove(ctx, "app:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "app:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	active := filepath.Join(dir, "images", app.ID, "rootfs")
	res, err = s.Prune(ctx, nil, []string{active})
	if err != nil || strings.Join(res.RemovedLayers, ",") != base.ID {
		t.Fatalf("prune with app active: %+v %v", res, err)
	}
	if got := entries(t, filepath.Join(dir, "removed")); strings.Join(got, ",") != app.ID {
		t.Errorf("removed holds %v", got)
	}
	res, err = s.Prune(ctx, nil, nil)
	if err != nil || strings.Join(res.RemovedLayers, ",") != app.ID {
		t.Fatalf("last prune %+v %v", res, err)
	}
	for _, d := range []string{"images", "removed", "staging"} {
		if got := entries(t, filepath.Join(dir, d)); len(got) != 0 {
			t.Errorf("%s holds %v", d, got)
		}
	}
	// By id prefix.
	if _, err := s.Get(ctx, "other:1", "", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, other.ID[:20]); err != nil {
		t.Errorf("remove by id prefix: %v", err)
	}
}

func TestUserAndGroupFromPath(t *testing.T) {
	// Root keeps the owners of the image's files.
	actortest.RequiresRoot(t)
	srv := newACIServer(t)
	m := manifest("owned", "1")
	m.App = &aci.App{Exec: []string{"/bin/ping"}, User: "/bin/ping", Group: "/etc/grp"}
	srv.put(t, "owned", "1", aci.Spec{Manifest: m, Files: []layers.Entry{
		{Name: "bin/ping", Body: "x", Mode: 0o755, Uid: 123, Gid: 5},
		{Name: "etc/grp", Body: "", Uid: 7, Gid: 456},
	}})
	img, err := newStore(t, tempDir(t), srv.prefix()).Get(context.Background(), "owned:1", "", true)
	if err != nil || img.Config.User != "123:456" {
		t.Errorf("user %q, %v", img.Config.User, err)
	}
	m.App.User = "/no/such/file"
	srv.put(t, "owned", "2", aci.Spec{Manifest: func() aci.Manifest { m2 := manifest("owned", "2"); m2.App = m.App; return m2 }()})
	if _, err := newStore(t, tempDir(t), srv.prefix()).Get(context.Background(), "owned:2", "", true); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("missing owner file: %v", err)
	}
}

func TestPlatformLabels(t *testing.T) {
	dir := tempDir(t)
	s := newStore(t, dir, "")
	other := "aarch64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	m := manifest("plat", "1")
	m.Labels = aci.Labels("version", "1", "os", "linux", "arch", other)
	if _, err := aci.Write(filepath.Join(s.ImportDir(), "a.aci"), aci.Spec{Manifest: m}); err != nil {
		t.Fatal(err)
	}
	noarch := aci.Manifest{Name: "noarch", Labels: aci.Labels("version", "1")}
	if _, err := aci.Write(filepath.Join(s.ImportDir(), "b.aci"), aci.Spec{Manifest: noarch}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Get(ctx, "plat:1", "", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("an image for %s matched on %s: %v", other, HostArch(), err)
	}
	if _, err := s.Get(ctx, "plat:1,arch="+other, "", true); err != nil {
		t.Errorf("explicit arch: %v", err)
	}
	if _, err := s.Get(ctx, "noarch:1", "", true); err != nil {
		t.Errorf("architecture-independent image: %v", err)
	}
}

func TestImportFile(t *testing.T) {
	dir := tempDir(t)
	s := newStore(t, dir, "")
	base, err := aci.Write(filepath.Join(dir, "base.aci"), aci.Spec{Manifest: manifest("base", "1")})
	if err != nil {
		t.Fatal(err)
	}
	app, err := aci.Write(filepath.Join(dir, "app.aci"), aci.Spec{Manifest: manifest("app", "1", dep("base", "1"))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Import(ctx, filepath.Join(dir, "base.aci")); err != nil {
		t.Fatal(err)
	}
	img, err := s.Import(ctx, filepath.Join(dir, "app.aci"))
	if err != nil || strings.Join(img.LayerIDs, ",") != base.ID+","+app.ID {
		t.Errorf("%v %v", img.LayerIDs, err)
	}
	if _, err := s.Import(ctx, filepath.Join(dir, "none.aci")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}
