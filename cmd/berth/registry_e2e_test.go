package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"golang.org/x/crypto/bcrypt"

	"github.com/berthrt/berth/actors/actortest"
)

// startDockerRegistry runs Debian's docker-registry (distribution) on a
// free loopback port with its storage in a temporary directory and returns
// its HOST:PORT; the registry is killed and its storage removed at the end
// of the test.
func startDockerRegistry(t testing.TB) string { return startDockerRegistryWith(t, "", "") }

// startDockerRegistryWith is startDockerRegistry requiring the basic-auth
// login user:password (htpasswd, bcrypt) when user is not empty.
func startDockerRegistryWith(t testing.TB, user, password string) string {
	t.Helper()
	return startDockerRegistryAuth(t, func(dir string) string {
		if user == "" {
			return ""
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("auth: {htpasswd: {realm: berth-test, path: %s}}\n", htpasswd)
	})
}

// startDockerRegistryAuth is startDockerRegistry with the auth section
// that auth writes (given the registry's directory; "" for none).
func startDockerRegistryAuth(t testing.TB, auth func(dir string) string) string {
	t.Helper()
	bin := actortest.RequiresTool(t, "docker-registry", "apt-get install docker-registry")
	dir, err := os.MkdirTemp("", "berth-test-registry-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}
http: {addr: %s}
`, filepath.Join(dir, "data"), addr) + auth(dir)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
	})
	// Up when /v2/ answers: 200, or 401 when it wants a login.
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not come up on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// skopeoRun runs skopeo and returns its stdout.
func skopeoRun(t *testing.T, skopeo string, args ...string) string {
	t.Helper()
	out, err := exec.Command(skopeo, args...).Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

func TestE2ERegistryPull(t *testing.T) {
	skopeo := actortest.RequiresTool(t, "skopeo", "apt-get install skopeo")
	reg := startDockerRegistry(t)

	// Build the built-in image's layout and push it, gzip and zstd.
	src := newHost(t)
	if _, errOut, code := src.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	layout := "oci:" + filepath.Join(src.work, "store", "docker", "builtin") + ":latest"
	skopeoRun(t, skopeo, "copy", "--dest-tls-verify=false", layout, "docker://"+reg+"/berth/test:v1")
	skopeoRun(t, skopeo, "copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd", layout, "docker://"+reg+"/berth/zstd:v1")
	var inspect struct{ Digest string }
	if err := json.Unmarshal([]byte(skopeoRun(t, skopeo, "inspect", "--tls-verify=false", "docker://"+reg+"/berth/test:v1")), &inspect); err != nil || inspect.Digest == "" {
		t.Fatalf("skopeo inspect: %v %+v", err, inspect)
	}

	h := newHost(t)
	flag := "--docker_registry=" + reg
	out, errOut, code := h.execute(t, flag, "--image="+reg+"/berth/test:v1", "--command=echo pulled")
	if code != 0 || out != "pulled\n" {
		t.Fatalf("by tag: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	out, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/test@"+inspect.Digest, "--command=echo by digest")
	if code != 0 || out != "by digest\n" {
		t.Errorf("by digest: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	out, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/zstd:v1", "--command=echo zstd")
	if code != 0 || out != "zstd\n" {
		t.Errorf("zstd: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	_, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/test:nope", "--command=true")
	if code != 125 || !strings.Contains(errOut, reg+"/berth/test:nope") {
		t.Errorf("unknown tag: exit %d (want 125); stderr:\n%s", code, errOut)
	}

	// A multi-arch index: the built-in image for this machine beside a
	// random foreign one.
	pushIndex(t, reg+"/berth/test:v1", reg+"/berth/multi:v1")
	out, errOut, code = h.execute(t, flag, "--image="+reg+"/berth/multi:v1", "--command=echo multi")
	if code != 0 || out != "multi\n" {
		t.Errorf("multi-arch index: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}

	// berth image pull into another fresh work dir prints the reference
	// and the digest, and the image is listed.
	fresh := newHost(t)
	pull, err := exec.Command(berthBin, "image", "pull", "--work_dir="+fresh.work, flag, reg+"/berth/test:v1").CombinedOutput()
	if err != nil || !strings.Contains(string(pull), reg+"/berth/test:v1 "+inspect.Digest) {
		t.Errorf("berth image pull: %v\n%s", err, pull)
	}
	ls, err := exec.Command(berthBin, "image", "ls", "--work_dir="+fresh.work).CombinedOutput()
	if err != nil || !strings.Contains(string(ls), reg+"/berth/test:v1") || !strings.Contains(string(ls), "registry") {
		t.Errorf("berth image ls: %v\n%s", err, ls)
	}
	if out, err := exec.Command(berthBin, "image", "pull", "--work_dir="+fresh.work, flag, reg+"/berth/none:v1").CombinedOutput(); err == nil || !strings.Contains(string(out), reg+"/berth/none:v1") {
		t.Errorf("berth image pull of an unknown repository: %v\n%s", err, out)
	}

	// --output json into yet another work dir: every layer of the result
	// is downloaded, its bytes never going back, and ends done; pulled
	// again, every layer is cached.
	js := newHost(t)
	for _, final := range []string{"done", "cached"} {
		out, err := exec.Command(berthBin, "image", "pull", "--work_dir="+js.work, flag, "--output=json", reg+"/berth/zstd:v1").Output()
		if err != nil {
			t.Fatalf("berth image pull --output=json: %v\n%s", err, out)
		}
		checkPullJSON(t, string(out), reg+"/berth/zstd:v1", final)
	}
}

// pullLine is any line of `berth image pull --output=json`.
type pullLine struct {
	Type, Reference, Layer, Phase, Digest, Source string
	Current, Total, Size                          uint64
	Layers                                        []string
}

// checkPullJSON checks the output of `berth image pull --output=json` of
// ref: every line JSON, the last one the result, and every layer of the
// result reported, ending in phase final with its whole blob.
func checkPullJSON(t *testing.T, out, ref, final string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var events []pullLine
	for _, l := range lines {
		var e pullLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		events = append(events, e)
	}
	res := events[len(events)-1]
	if res.Type != "result" || res.Reference != ref || !strings.HasPrefix(res.Digest, "sha256:") || len(res.Layers) == 0 || res.Size == 0 || res.Source != "registry" {
		t.Fatalf("result %+v", res)
	}
	last := map[string]pullLine{}
	sawBytes := map[string]bool{}
	for _, e := range events[:len(events)-1] {
		prev, seen := last[e.Layer]
		if e.Type != "progress" || e.Reference != ref || (seen && e.Current < prev.Current) || e.Total == 0 {
			t.Errorf("event %+v after %+v", e, prev)
		}
		if e.Phase == "downloading" && e.Current > 0 {
			sawBytes[e.Layer] = true
		}
		last[e.Layer] = e
	}
	if len(last) != len(res.Layers) {
		t.Errorf("events for %d layers, the image has %d", len(last), len(res.Layers))
	}
	for _, id := range res.Layers {
		if e := last[id]; e.Phase != final || e.Current != e.Total {
			t.Errorf("layer %s ends with %+v, want %s", id, e, final)
		}
		if final == "done" && !sawBytes[id] {
			t.Errorf("layer %s: no bytes downloaded were reported", id)
		}
	}
}

// pushIndex pushes to dst an image index of the image src for
// linux/runtime.GOARCH and a random image for another architecture.
func pushIndex(t *testing.T, src, dst string) {
	t.Helper()
	srcRef, err := name.ParseReference(src)
	if err != nil {
		t.Fatal(err)
	}
	native, err := remote.Image(srcRef)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	dstRef, err := name.ParseReference(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(dstRef, idx); err != nil {
		t.Fatal(err)
	}
}

// TestE2ERegistryBasicAuth: a registry that wants a login (htpasswd) serves
// the image given --docker_config with that login, and refuses (exit 125,
// "permission denied" naming the image) without it.
func TestE2ERegistryBasicAuth(t *testing.T) {
	skopeo := actortest.RequiresTool(t, "skopeo", "apt-get install skopeo")
	reg := startDockerRegistryWith(t, "berth", "s3cret")
	src := newHost(t)
	if _, errOut, code := src.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	layout := "oci:" + filepath.Join(src.work, "store", "docker", "builtin") + ":latest"
	skopeoRun(t, skopeo, "copy", "--dest-tls-verify=false", "--dest-creds=berth:s3cret", layout, "docker://"+reg+"/berth/private:v1")

	h := checkLoginRequired(t, reg)

	// The login from a credential helper (credsStore), found on PATH and
	// asked for this registry; a helper that is not installed is a JSON
	// error of class FAILED_PRECONDITION naming it.
	helpers := filepath.Join(h.root, "helpers")
	if err := os.MkdirAll(helpers, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nread -r url\n[ \"$url\" = \"" + reg + "\" ] || { echo 'credentials not found in native keychain'; exit 1; }\n" +
		`echo '{"ServerURL":"` + reg + `","Username":"berth","Secret":"s3cret"}'` + "\n"
	if err := os.WriteFile(filepath.Join(helpers, "docker-credential-berth-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ store, code string }{{"berth-test", ""}, {"berth-missing", "FAILED_PRECONDITION"}} {
		cfg := filepath.Join(h.root, c.store+".json")
		if err := os.WriteFile(cfg, []byte(`{"credsStore":"`+c.store+`","auths":{"`+reg+`":{}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		fresh := newHost(t)
		cmd := exec.Command(berthBin, "image", "pull", "--work_dir="+fresh.work, "--docker_registry="+reg, "--docker_config="+cfg, "--output=json", reg+"/berth/private:v1")
		cmd.Env = append(os.Environ(), "PATH="+helpers+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.Output()
		if c.code == "" {
			if err != nil {
				t.Errorf("credsStore %s: %v\n%s", c.store, err, out)
				continue
			}
			checkPullJSON(t, string(out), reg+"/berth/private:v1", "done")
			continue
		}
		var e struct{ Type, Code, Error string }
		if jerr := json.Unmarshal(out, &e); err == nil || jerr != nil || e.Type != "error" || e.Code != c.code || !strings.Contains(e.Error, "docker-credential-"+c.store) {
			t.Errorf("credsStore %s: %v, %q", c.store, err, out)
		}
	}
}

// checkLoginRequired checks, against a registry holding berth/private:v1
// that wants the login berth:s3cret, that a container of that image does
// not run without a login (exit 125, permission denied naming it) and that
// berth image pull --output=json says PERMISSION_DENIED; and that it runs
// with the login in --docker_config. It returns the host used.
func checkLoginRequired(t *testing.T, reg string) *host {
	t.Helper()
	h := newHost(t)
	image := "--image=" + reg + "/berth/private:v1"
	_, errOut, code := h.execute(t, "--docker_registry="+reg, image, "--command=true")
	if code != 125 || !strings.Contains(errOut, "berth/private:v1") || !strings.Contains(errOut, "permission denied") {
		t.Errorf("without a login: exit %d (want 125); stderr:\n%s", code, errOut)
	}
	out, err := exec.Command(berthBin, "image", "pull", "--work_dir="+h.work, "--docker_registry="+reg, "--output=json", reg+"/berth/private:v1").Output()
	var e struct{ Type, Code string }
	if jerr := json.Unmarshal(out, &e); err == nil || jerr != nil || e.Type != "error" || e.Code != "PERMISSION_DENIED" {
		t.Errorf("berth image pull without a login: %v, %q", err, out)
	}
	config := filepath.Join(h.root, "config.json")
	if err := os.WriteFile(config, []byte(`{"auths":{"`+reg+`":{"auth":"YmVydGg6czNjcmV0"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out2, errOut, code := h.execute(t, "--docker_registry="+reg, "--docker_config="+config, image, "--command=echo logged in")
	if code != 0 || out2 != "logged in\n" {
		t.Errorf("with --docker_config: exit %d, output %q; stderr:\n%s", code, out2, errOut)
	}
	return h
}

// tokenServer is a token service for Docker's token authentication, as
// distribution's registry trusts it: GET /token?service=S&scope=... with a
// basic-auth login answers a JWT (ES256, signed by a self-signed
// certificate carried in the x5c header, which the registry has in its
// rootcertbundle) granting the scopes asked.
type tokenServer struct {
	realm, bundle, issuer, service, login string
	key                                   *ecdsa.PrivateKey
	cert                                  []byte // DER
	issued                                atomic.Int64
}

// startTokenServer serves tokens for login (user:password) on a free
// loopback port; its realm names the host localhost (go-containerregistry
// refuses realms on loopback IP literals other than the registry's own).
func startTokenServer(t *testing.T, login string) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth-test-token"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "token.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{bundle: bundle, issuer: "berth-test-issuer", service: "berth-test", login: login, key: key, cert: cert}
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.realm = "http://localhost:" + srv.URL[strings.LastIndexByte(srv.URL, ':')+1:] + "/token"
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok || user+":"+pass != ts.login || req.URL.Query().Get("service") != ts.service {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}`, http.StatusUnauthorized)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, scope := range req.URL.Query()["scope"] {
		for _, sc := range strings.Fields(scope) {
			parts := strings.Split(sc, ":")
			if len(parts) == 3 {
				grants = append(grants, access{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
			}
		}
	}
	now := time.Now().Unix()
	header, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.cert)}})
	claims, _ := json.Marshal(map[string]any{
		"iss": ts.issuer, "sub": user, "aud": ts.service, "exp": now + 300, "nbf": now - 10, "iat": now,
		"jti": strconv.FormatInt(ts.issued.Add(1), 10), "access": grants,
	})
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, digest[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// JWS ES256: r and s, 32 bytes each, big-endian.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
}

// TestE2ERegistryTokenAuth: Debian's docker-registry with token
// authentication (a token service the test runs, trusted through its
// certificate) serves a pull whose login --docker_config gives, and
// refuses one without (exit 125, permission denied; a JSON error
// PERMISSION_DENIED from berth image pull).
func TestE2ERegistryTokenAuth(t *testing.T) {
	skopeo := actortest.RequiresTool(t, "skopeo", "apt-get install skopeo")
	ts := startTokenServer(t, "berth:s3cret")
	reg := startDockerRegistryAuth(t, func(string) string {
		return fmt.Sprintf("auth: {token: {realm: %q, service: %s, issuer: %s, rootcertbundle: %s}}\n", ts.realm, ts.service, ts.issuer, ts.bundle)
	})
	src := newHost(t)
	if _, errOut, code := src.execute(t, "--command=true"); code != 0 {
		t.Fatalf("built-in image: exit %d: %s", code, errOut)
	}
	layout := "oci:" + filepath.Join(src.work, "store", "docker", "builtin") + ":latest"
	skopeoRun(t, skopeo, "copy", "--dest-tls-verify=false", "--dest-creds=berth:s3cret", layout, "docker://"+reg+"/berth/private:v1")
	pushed := ts.issued.Load()

	checkLoginRequired(t, reg)
	if ts.issued.Load() == pushed {
		t.Error("the pull got no token from the token service")
	}
}
