package docker

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthrt/berth/fixtures/images"
	"github.com/berthrt/berth/process/errdefs"
)

// testRegistry is an in-process registry on 127.0.0.1 that counts blob
// downloads and can serve replaced blobs or refuse every request.
type testRegistry struct {
	host string
	// blobGets counts GETs of blobs.
	blobGets atomic.Int64
	// replace maps a blob digest to the bytes served instead.
	replace map[string][]byte
	// deny answers 401 to every request.
	deny atomic.Bool
	// stall, when set, is a blob digest whose GET sends half the blob and
	// then hangs until the request ends; stalled is told when that happens.
	stall   atomic.Value // string
	stalled chan struct{}
	// login, when set ("user:password"), is required as HTTP basic auth.
	login atomic.Value // string
	// hold, when set, is a blob digest whose GET sends half the blob, tells
	// held and waits for release (or the request's end) to send the rest.
	hold          atomic.Value // string
	held, release chan struct{}
	// token, when set, makes the registry want Bearer tokens.
	token atomic.Pointer[tokenAuth]
}

// tokenAuth is Docker's token authentication, as Docker Hub does it: a
// request without a valid token gets 401 and a Bearer challenge naming the
// realm (realm on this server), the service and the scope it needs; the
// realm issues a token for the scope asked to the login given as basic
// auth (GET) or to the refresh token given by OAuth2 (POST).
type tokenAuth struct {
	login, refresh string
	// realmURL, when set, is the realm the challenge names instead of
	// realm on the registry itself.
	realmURL atomic.Value // string
	mu       sync.Mutex
	tokens   map[string]string // token → scope granted
	issued   atomic.Int64
}

// realm is the token endpoint's path.
const realm = "/token"

// serveToken answers the token endpoint.
func (ta *tokenAuth) serveToken(w http.ResponseWriter, req *http.Request) {
	var scope string
	ok := false
	switch req.Method {
	case http.MethodGet:
		user, pass, basic := req.BasicAuth()
		ok = basic && user+":"+pass == ta.login
		scope = req.URL.Query().Get("scope")
	case http.MethodPost:
		ok = req.PostFormValue("grant_type") == "refresh_token" && ta.refresh != "" && req.PostFormValue("refresh_token") == ta.refresh
		scope = req.PostFormValue("scope")
	}
	if !ok {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}`, http.StatusUnauthorized)
		return
	}
	tok := strconv.FormatInt(ta.issued.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ta.mu.Lock()
	ta.tokens[tok] = scope
	ta.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"token":"`+tok+`","access_token":"`+tok+`","expires_in":300}`)
}

// allowed reports whether req carries a token granting what it asks for:
// pull on the repository of /v2/<name>/manifests|blobs/..., anything
// valid for /v2/; when not, it answers with the challenge.
func (ta *tokenAuth) allowed(w http.ResponseWriter, req *http.Request) bool {
	need := ""
	rest := strings.TrimPrefix(req.URL.Path, "/v2/")
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.Index(rest, kind); i > 0 {
			need = "repository:" + rest[:i] + ":pull"
		}
	}
	tok, bearer := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	ta.mu.Lock()
	granted, valid := ta.tokens[tok]
	ta.mu.Unlock()
	if bearer && valid && (need == "" || slices.Contains(strings.Fields(granted), need)) {
		return true
	}
	realmURL := "http://" + req.Host + realm
	if u, _ := ta.realmURL.Load().(string); u != "" {
		realmURL = u
	}
	challenge := `Bearer realm="` + realmURL + `",service="berth-test"`
	if need != "" {
		challenge += `,scope="` + need + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token wanted"}]}`, http.StatusUnauthorized)
	return false
}

// requireTokens makes the registry want Bearer tokens issued for login
// (user:password) or refresh (an identity token).
func (r *testRegistry) requireTokens(login, refresh string) *tokenAuth {
	ta := &tokenAuth{login: login, refresh: refresh, tokens: map[string]string{}}
	r.token.Store(ta)
	return ta
}

func startRegistry(t testing.TB) *testRegistry {
	t.Helper()
	r := &testRegistry{replace: map[string][]byte{}, stalled: make(chan struct{}, 1), held: make(chan struct{}, 1), release: make(chan struct{})}
	r.stall.Store("")
	r.login.Store("")
	r.hold.Store("")
	var mu sync.Mutex
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if ta := r.token.Load(); ta != nil {
			if req.URL.Path == realm {
				ta.serveToken(w, req)
				return
			}
			if !ta.allowed(w, req) {
				return
			}
		}
		if login := r.login.Load().(string); login != "" {
			user, pass, ok := req.BasicAuth()
			if !ok || user+":"+pass != login {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if r.deny.Load() {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}`, http.StatusUnauthorized)
			return
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.blobGets.Add(1)
			d := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
			mu.Lock()
			data, ok := r.replace[d]
			stall, hold := r.stall.Load() == d, r.hold.Load() == d
			mu.Unlock()
			if ok {
				_, _ = w.Write(data)
				return
			}
			if hold {
				body := serveHalf(w, req, h)
				r.held <- struct{}{}
				select {
				case <-r.release:
					_, _ = w.Write(body[len(body)/2:])
				case <-req.Context().Done():
				}
				return
			}
			if stall {
				serveHalf(w, req, h)
				select {
				case r.stalled <- struct{}{}:
				default:
				}
				<-req.Context().Done()
				return
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// serveHalf answers a blob GET with the blob's full Content-Length but
// only its first half, flushed, and returns the whole blob.
func serveHalf(w http.ResponseWriter, req *http.Request, h http.Handler) []byte {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	return body
}

// push puts the image (or index) of a one-entry OCI layout under ref.
func push(t testing.TB, dir, ref string) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d := im.Manifests[len(im.Manifests)-1]
	if d.MediaType.IsIndex() {
		ii, err := idx.ImageIndex(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(r, ii); err != nil {
			t.Fatal(err)
		}
		return
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// pushStandard pushes images.Standard under host/repo:tag.
func pushStandard(t *testing.T, host, repo string) images.Built {
	t.Helper()
	built, _ := pushStandardDir(t, host, repo)
	return built
}

// pushStandardDir is pushStandard that also returns the layout pushed.
func pushStandardDir(t *testing.T, host, repo string) (images.Built, string) {
	t.Helper()
	dir := t.TempDir()
	built, err := images.OCILayout(dir, "v1", images.Standard(""))
	if err != nil {
		t.Fatal(err)
	}
	push(t, dir, host+"/"+repo)
	return built, dir
}

func TestRegistryPull(t *testing.T) {
	reg := startRegistry(t)
	built := pushStandard(t, reg.host, "berth/test:v1")
	s := newStore(t, Options{Registry: reg.host})

	img := get(t, s, reg.host+"/berth/test:v1")
	checkStandard(t, s, img, built.Images[0])
	if img.Reference != reg.host+"/berth/test:v1" || img.Digest != built.Digest || img.Source != sourceRegistry {
		t.Fatalf("reference %s digest %s (want %s) source %s", img.Reference, img.Digest, built.Digest, img.Source)
	}
	if n := reg.blobGets.Load(); n != 3 {
		t.Fatalf("%d blob downloads, want 3 (config and two layers)", n)
	}

	// By digest, in the same store: the layers are cached by diff id and
	// not downloaded again.
	byDigest := get(t, s, reg.host+"/berth/test@"+built.Digest)
	if byDigest.Digest != built.Digest || s.extractions.Load() != 2 {
		t.Fatalf("by digest: %+v, %d extractions", byDigest, s.extractions.Load())
	}
	if _, err := s.Get(context.Background(), reg.host+"/berth/test@"+built.Digest, "copy", false); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Load(); n != 4 {
		t.Fatalf("%d blob downloads, want 4 (the digest is served from the store; the re-pull fetches only the config)", n)
	}

	// A name without a registry comes from Options.Registry and keeps its
	// docker.io name; both images stay in the store.
	pushStandard(t, reg.host, "library/busybox:latest")
	hub := get(t, s, "busybox")
	if hub.Reference != "docker.io/library/busybox:latest" || hub.Digest != built.Digest {
		t.Fatalf("default registry: %+v", hub)
	}
	list, err := s.List(context.Background())
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d images, %v", len(list), err)
	}

	// By digest in a fresh store.
	fresh := newStore(t, Options{Registry: "http://" + reg.host})
	if img := get(t, fresh, reg.host+"/berth/test@"+built.Digest); img.Digest != built.Digest {
		t.Fatalf("fresh by digest: %+v", img)
	}
	checkClean(t, fresh, built.Images[0].DiffIDs)
}

func TestRegistryErrors(t *testing.T) {
	reg := startRegistry(t)
	pushStandard(t, reg.host, "berth/test:v1")
	s := newStore(t, Options{Registry: reg.host})
	ctx := context.Background()
	for _, ref := range []string{reg.host + "/berth/test:nope", reg.host + "/berth/nothing:v1",
		reg.host + "/berth/test@sha256:" + strings.Repeat("a", 64)} {
		_, err := s.Get(ctx, ref, "copy", true)
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "registry "+reg.host) {
			t.Fatalf("%s: %v", ref, err)
		}
	}

	reg.deny.Store(true)
	if _, err := s.Get(ctx, reg.host+"/berth/test:v1", "copy", true); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("denied: %v", err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	if _, err := s.Get(ctx, host+"/berth/test:v1", "copy", true); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("unreachable: %v", err)
	}
	checkClean(t, s, nil)

	for _, bad := range []string{"http://registry.example.com", "ftp://127.0.0.1:5000", "127.0.0.1:5000/path"} {
		if _, err := New(Options{Dir: filepath.Join(t.TempDir(), "d"), Registry: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("registry %q: %v", bad, err)
		}
	}
	// Without a registry, names are not pulled.
	off := newStore(t, Options{})
	if _, err := off.Get(ctx, reg.host+"/berth/test:v1", "copy", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("pulls off: %v", err)
	}
}

func TestRegistryManifestList(t *testing.T) {
	reg := startRegistry(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	foreign, native := images.Small("", "foreign"), images.Small("", "native")
	foreign.Architecture = other
	dir := t.TempDir()
	built, err := images.OCILayout(dir, "multi", foreign, native)
	if err != nil {
		t.Fatal(err)
	}
	push(t, dir, reg.host+"/berth/multi:v1")
	s := newStore(t, Options{Registry: reg.host})
	img := get(t, s, reg.host+"/berth/multi:v1")
	if img.Digest != built.Images[1].ManifestDigest || readFile(t, filepath.Join(img.Layers[0], "hello")) != "native" {
		t.Fatalf("picked %s, want the %s image %s", img.Digest, runtime.GOARCH, built.Images[1].ManifestDigest)
	}
	// The index digest selects the same image.
	if byIndex := get(t, s, reg.host+"/berth/multi@"+built.Digest); byIndex.Digest != built.Images[1].ManifestDigest {
		t.Fatalf("by index digest: %+v", byIndex)
	}

	onlyDir := t.TempDir()
	if _, err := images.OCILayout(onlyDir, "x", foreign, foreign); err != nil {
		t.Fatal(err)
	}
	push(t, onlyDir, reg.host+"/berth/foreign:v1")
	if _, err := s.Get(context.Background(), reg.host+"/berth/foreign:v1", "copy", true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("no image for this platform: %v", err)
	}
}

func TestRegistryCorruptLayer(t *testing.T) {
	reg := startRegistry(t)
	built, stdDir := pushStandardDir(t, reg.host, "berth/test:v1")
	// Serve another valid layer in place of the first one: it extracts,
	// but its digest is not the manifest's.
	dir := t.TempDir()
	small, err := images.OCILayout(dir, "v1", images.Small("", "x"))
	if err != nil {
		t.Fatal(err)
	}
	m := layerDigests(t, stdDir, built.Digest)
	smallBlob := readFile(t, filepath.Join(dir, blobName(layerDigests(t, dir, small.Digest)[0])))
	reg.replace[m[0]] = []byte(smallBlob)

	s := newStore(t, Options{Registry: reg.host})
	_, err = s.Get(context.Background(), reg.host+"/berth/test:v1", "copy", true)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), m[0]) {
		t.Fatalf("corrupt layer: %v", err)
	}
	if exists(s.layerDir(built.Images[0].DiffIDs[0])) {
		t.Fatal("the corrupt layer is in the cache")
	}
	checkClean(t, s, built.Images[0].DiffIDs[1:])
	if imgs, _ := s.List(context.Background()); len(imgs) != 0 {
		t.Fatalf("stored %v", imgs)
	}
}

// layerDigests returns the layer digests of a manifest in a layout.
func layerDigests(t *testing.T, dir, digest string) []string {
	t.Helper()
	p, err := readOCIManifest(dirFiles{root: dir}, descriptor{MediaType: mediaTypeOCIManifest, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range p.layers {
		out = append(out, l.digest)
	}
	return out
}

func TestRegistryConcurrentGets(t *testing.T) {
	reg := startRegistry(t)
	built := pushStandard(t, reg.host, "berth/test:v1")
	s := newStore(t, Options{Registry: reg.host})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := s.Get(context.Background(), reg.host+"/berth/test:v1", "copy", true)
			if err == nil && img.Digest != built.Digest {
				err = errors.New("digest " + img.Digest)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.importRuns.Load() != 1 || s.extractions.Load() != 2 || reg.blobGets.Load() != 3 {
		t.Fatalf("imports %d, extractions %d, blob downloads %d; want 1, 2, 3", s.importRuns.Load(), s.extractions.Load(), reg.blobGets.Load())
	}
	checkClean(t, s, built.Images[0].DiffIDs)
}

// TestRegistryPullKilledMidway: a pull killed (SIGKILL) while a layer is
// half downloaded leaves a store that recovers cleanly — no half layer in
// the cache, staging emptied, no image recorded — and a retry succeeds.
func TestRegistryPullKilledMidway(t *testing.T) {
	reg := startRegistry(t)
	built, stdDir := pushStandardDir(t, reg.host, "berth/crash:v1")
	stalled := layerDigests(t, stdDir, built.Digest)[1]
	reg.stall.Store(stalled)
	dir := filepath.Join(t.TempDir(), "store", "docker")
	ref := reg.host + "/berth/crash:v1"
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), pullChildEnv+"="+dir+"|"+reg.host+"|"+ref)
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.stalled:
	case <-time.After(time.Minute):
		_ = child.Process.Kill()
		t.Fatalf("the pull never reached the stalled layer:\n%s", out.String())
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if staged, _ := os.ReadDir(filepath.Join(dir, "staging")); len(staged) == 0 {
		t.Log("the killed pull left nothing in staging (its extraction had not begun)")
	}
	reg.stall.Store("")
	s := newStore(t, Options{Dir: dir, Registry: reg.host})
	res, err := s.Recover(context.Background())
	if err != nil || res.Images != 0 {
		t.Fatalf("recover = %+v, %v; want no image", res, err)
	}
	checkClean(t, s, built.Images[0].DiffIDs)
	img := get(t, s, ref)
	checkStandard(t, s, img, built.Images[0])
}

// TestRegistryBasicAuth: a registry that wants a login refuses anonymous
// and wrong logins (permission denied) and serves the one in --docker_config,
// whether written as "auth" or as "username"/"password".
func TestRegistryBasicAuth(t *testing.T) {
	reg := startRegistry(t)
	built := pushStandard(t, reg.host, "berth/private:v1")
	reg.login.Store("berth:s3cret")
	ref := reg.host + "/berth/private:v1"
	config := func(body string) string {
		p := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, config string
		ok           bool
	}{
		{"anonymous", "", false},
		{"wrong password", config(`{"auths":{"` + reg.host + `":{"username":"berth","password":"nope"}}}`), false},
		{"other registry", config(`{"auths":{"example.com":{"auth":"YmVydGg6czNjcmV0"}}}`), false},
		{"auth field", config(`{"auths":{"` + reg.host + `":{"auth":"YmVydGg6czNjcmV0"}}}`), true},
		{"username and password", config(`{"auths":{"http://` + reg.host + `/v2/":{"username":"berth","password":"s3cret"}}}`), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, Options{Registry: reg.host, DockerConfig: c.config})
			img, err := s.Get(context.Background(), ref, "copy", true)
			if !c.ok {
				if !errors.Is(err, errdefs.ErrPermissionDenied) {
					t.Fatalf("Get = %v, want permission denied", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkStandard(t, s, img, built.Images[0])
		})
	}
	for _, bad := range []string{config(`{`), config(`{"auths":{"h":{"auth":"%%%"}}}`), config(`{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}`)} {
		if _, err := New(Options{Dir: t.TempDir(), DockerConfig: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New with a malformed config.json = %v, want invalid argument", err)
		}
	}
	if _, err := New(Options{Dir: t.TempDir(), DockerConfig: "/no/such/config.json"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("New with a missing config.json = %v, want not found", err)
	}
}
