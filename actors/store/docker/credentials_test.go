package docker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthrt/berth/process/errdefs"
)

// writeConfig writes a Docker config.json and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// helperDir writes credential helpers, docker-credential-<name> shell
// scripts, into a new directory and returns it. Each script records the
// server URL it was asked for in <dir>/<name>.asked.
func helperDir(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		script := "#!/bin/sh\nset -e\n[ \"$1\" = get ] || exit 3\nread -r url || true\nprintf '%s' \"$url\" > \"" + filepath.Join(dir, name) + ".asked\"\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, helperPrefix+name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// login prints a helper's answer for user and secret.
func login(user, secret string) string {
	return `printf '{"ServerURL":"%s","Username":"` + user + `","Secret":"` + secret + `"}' "$url"`
}

// TestCredentialHelpers: logins come from credHelpers[host], else
// credsStore, else auths, each helper run with the server URL on stdin;
// "credentials not found" means anonymous; a helper that is missing, fails,
// hangs or babbles is a typed error naming it.
func TestCredentialHelpers(t *testing.T) {
	reg := startRegistry(t)
	built := pushStandard(t, reg.host, "berth/private:v1")
	reg.login.Store("berth:s3cret")
	ref := reg.host + "/berth/private:v1"
	helpers := helperDir(t, map[string]string{
		"good":     login("berth", "s3cret"),
		"wrong":    login("berth", "nope"),
		"notfound": "echo 'credentials not found in native keychain'; exit 1",
		"fail":     "echo 'the keychain is locked' >&2; exit 2",
		"slow":     "exec sleep 30",
		"babble":   "echo 'this is not JSON'",
		"empty":    `printf '{"ServerURL":"","Username":"","Secret":""}'`,
	})
	wrongAuth := `"auths":{"` + reg.host + `":{"username":"berth","password":"nope"}}`
	goodAuth := `"auths":{"` + reg.host + `":{"auth":"YmVydGg6czNjcmV0"}}`
	for _, c := range []struct {
		name, config string
		class        error // nil: the pull works
		asked        string
	}{
		{"credsStore", `{"credsStore":"good"}`, nil, "good"},
		{"credsStore over auths", `{"credsStore":"good",` + wrongAuth + `}`, nil, "good"},
		{"credHelpers over credsStore", `{"credsStore":"wrong","credHelpers":{"` + reg.host + `":"good"}}`, nil, "good"},
		{"credHelpers over auths", `{"credHelpers":{"` + reg.host + `":"wrong"},` + goodAuth + `}`, errdefs.ErrPermissionDenied, "wrong"},
		{"credHelpers of another registry", `{"credHelpers":{"example.com":"wrong"},` + goodAuth + `}`, nil, ""},
		{"not found is anonymous", `{"credsStore":"notfound"}`, errdefs.ErrPermissionDenied, "notfound"},
		{"empty answer is anonymous", `{"credsStore":"empty"}`, errdefs.ErrPermissionDenied, "empty"},
		{"missing helper", `{"credsStore":"missing"}`, errdefs.ErrFailedPrecondition, ""},
		{"failing helper", `{"credsStore":"fail"}`, errdefs.ErrUnavailable, "fail"},
		{"helper answering garbage", `{"credHelpers":{"` + reg.host + `":"babble"}}`, errdefs.ErrUnavailable, "babble"},
		{"hanging helper", `{"credsStore":"slow"}`, errdefs.ErrDeadlineExceeded, "slow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, f := range []string{"good", "wrong", "notfound", "fail", "slow", "babble", "empty"} {
				_ = os.Remove(filepath.Join(helpers, f+".asked"))
			}
			s := newStore(t, Options{Registry: reg.host, DockerConfig: writeConfig(t, c.config),
				CredentialHelperPath: helpers, CredentialHelperTimeout: 500 * time.Millisecond})
			img, err := s.Get(context.Background(), ref, "copy", true)
			switch {
			case c.class == nil && err != nil:
				t.Fatal(err)
			case c.class == nil:
				checkStandard(t, s, img, built.Images[0])
			case !errors.Is(err, c.class):
				t.Fatalf("Get = %v, want %v", err, c.class)
			}
			if c.class != nil && !errors.Is(c.class, errdefs.ErrPermissionDenied) && !strings.Contains(err.Error(), "docker-credential-") {
				t.Errorf("the error does not name the helper: %v", err)
			}
			if c.asked != "" {
				if got := readFile(t, filepath.Join(helpers, c.asked+".asked")); got != reg.host {
					t.Errorf("helper %s was asked for %q, want %q", c.asked, got, reg.host)
				}
			}
		})
	}
	for _, bad := range []string{`{"credsStore":"../../bin/sh"}`, `{"credHelpers":{"h":"a/b"}}`} {
		if _, err := New(Options{Dir: t.TempDir(), DockerConfig: writeConfig(t, bad)}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New with %s = %v, want invalid argument", bad, err)
		}
	}
}

// TestHelperServerURL: Docker Hub's logins are asked for under Docker's
// server URL for it; other registries under their host.
func TestHelperServerURL(t *testing.T) {
	helpers := helperDir(t, map[string]string{"good": login("<token>", "refresh-me")})
	c, err := loadCredentials(writeConfig(t, `{"credsStore":"good"}`), helpers, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"index.docker.io": dockerHubServerURL, "registry-1.docker.io": dockerHubServerURL, "127.0.0.1:5000": "127.0.0.1:5000"} {
		auth, err := c.authFor(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(helpers, "good.asked")); got != want {
			t.Errorf("%s: the helper was asked for %q, want %q", host, got, want)
		}
		ac, err := auth.Authorization()
		if err != nil || ac.IdentityToken != "refresh-me" || ac.Username != "" || ac.Password != "" {
			t.Errorf("%s: <token> login = %+v, %v; want the identity token", host, ac, err)
		}
	}
}

// TestRegistryTokenAuth: a registry that wants Bearer tokens (Docker's
// token authentication, the realm on the registry's host) serves a pull
// whose login the realm accepts — a password from auths or a credential
// helper, or an identity token (OAuth2 refresh) — and refuses anonymous
// and wrong logins with permission denied.
func TestRegistryTokenAuth(t *testing.T) {
	reg := startRegistry(t)
	built := pushStandard(t, reg.host, "berth/private:v1")
	ta := reg.requireTokens("berth:s3cret", "refresh-me")
	ref := reg.host + "/berth/private:v1"
	helpers := helperDir(t, map[string]string{"token": login("<token>", "refresh-me"), "pass": login("berth", "s3cret")})
	for _, c := range []struct {
		name, config string
		ok           bool
	}{
		{"anonymous", "", false},
		{"wrong password", writeConfig(t, `{"auths":{"`+reg.host+`":{"username":"berth","password":"nope"}}}`), false},
		{"wrong identity token", writeConfig(t, `{"auths":{"`+reg.host+`":{"identitytoken":"stale"}}}`), false},
		{"password", writeConfig(t, `{"auths":{"`+reg.host+`":{"auth":"YmVydGg6czNjcmV0"}}}`), true},
		{"identity token", writeConfig(t, `{"auths":{"`+reg.host+`":{"identitytoken":"refresh-me"}}}`), true},
		{"helper with a password", writeConfig(t, `{"credsStore":"pass"}`), true},
		{"helper with an identity token", writeConfig(t, `{"credHelpers":{"`+reg.host+`":"token"}}`), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := ta.issued.Load()
			s := newStore(t, Options{Registry: reg.host, DockerConfig: c.config, CredentialHelperPath: helpers})
			img, err := s.Get(context.Background(), ref, "copy", true)
			if !c.ok {
				if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), ref) {
					t.Fatalf("Get = %v, want permission denied naming %s", err, ref)
				}
				checkClean(t, s, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkStandard(t, s, img, built.Images[0])
			if ta.issued.Load() == before {
				t.Error("the pull got no token from the realm")
			}
		})
	}
}

// TestRegistryTokenRealmElsewhere: a realm served apart from the registry
// works when named by host name; named by a loopback IP literal, it is
// refused (go-containerregistry's guard against request forgery) as
// unavailable, saying why.
func TestRegistryTokenRealmElsewhere(t *testing.T) {
	reg := startRegistry(t)
	pushStandard(t, reg.host, "berth/private:v1")
	ta := reg.requireTokens("berth:s3cret", "")
	realmSrv := httptest.NewServer(http.HandlerFunc(ta.serveToken))
	t.Cleanup(realmSrv.Close)
	port := realmSrv.URL[strings.LastIndexByte(realmSrv.URL, ':')+1:]
	config := writeConfig(t, `{"auths":{"`+reg.host+`":{"auth":"YmVydGg6czNjcmV0"}}}`)
	ref := reg.host + "/berth/private:v1"

	ta.realmURL.Store("http://localhost:" + port + "/token")
	if _, err := newStore(t, Options{Registry: reg.host, DockerConfig: config}).Get(context.Background(), ref, "copy", true); err != nil {
		t.Fatalf("realm on localhost: %v", err)
	}
	ta.realmURL.Store("http://127.0.0.1:" + port + "/token")
	_, err := newStore(t, Options{Registry: reg.host, DockerConfig: config}).Get(context.Background(), ref, "copy", true)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "realm") {
		t.Fatalf("realm on another loopback address: %v, want unavailable naming the realm", err)
	}
}
