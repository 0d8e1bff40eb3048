package appc

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthrt/berth/process/errdefs"
)

const goodManifest = `{
  "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/hello",
  "labels": [{"name": "version", "value": "1.0.0"}, {"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
  "app": {"exec": ["/bin/hello", "-v"], "user": "100", "group": "300", "workingDirectory": "/opt/work",
          "environment": [{"name": "GREETING", "value": "hi there"}],
          "eventHandlers": [{"name": "pre-start", "exec": ["/bin/true"]}], "ports": [{"name": "http", "port": 80, "protocol": "tcp"}]},
  "dependencies": [{"imageName": "example.com/base", "labels": [{"name": "version", "value": "2"}]}],
  "annotations": [{"name": "created", "value": "2024-05-01T10:00:00Z"}],
  "futureField": {"anything": true}
}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "example.com/hello" || len(m.App.Exec) != 2 || m.App.WorkingDirectory != "/opt/work" || len(m.Dependencies) != 1 {
		t.Errorf("parsed %+v", m)
	}
	if v, _ := m.Labels.Get("version"); v != "1.0.0" {
		t.Errorf("version %q", v)
	}
	if c := created(m); c.Year() != 2024 {
		t.Errorf("created %v", c)
	}
}

func TestParseManifestRejects(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(goodManifest, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(goodManifest, old, new, 1)
	}
	cases := []struct{ name, data, field string }{
		{"not json", `{"acKind": `, ""},
		{"trailing data", goodManifest + `{}`, ""},
		{"wrong type", edit(`"exec": ["/bin/hello", "-v"]`, `"exec": "/bin/hello"`), "app.exec"},
		{"kind", edit(`"ImageManifest"`, `"PodManifest"`), "acKind"},
		{"version", edit(`"0.8.11"`, `"latest"`), "acVersion"},
		{"no name", edit(`"name": "example.com/hello",`, ``), "name"},
		{"upper-case name", edit(`"example.com/hello"`, `"Example.com/Hello"`), "name"},
		{"name with dots segment", edit(`"example.com/hello"`, `"example.com/../etc"`), "name"},
		{"label called name", edit(`{"name": "os", "value": "linux"}`, `{"name": "name", "value": "x"}`), "labels[1].name"},
		{"duplicate label", edit(`{"name": "os", "value": "linux"}`, `{"name": "version", "value": "2"}`), "labels[1].name"},
		{"empty exec", edit(`["/bin/hello", "-v"]`, `[]`), "app.exec"},
		{"relative exec", edit(`["/bin/hello", "-v"]`, `["hello"]`), "app.exec[0]"},
		{"no user", edit(`"user": "100",`, ``), "app.user"},
		{"no group", edit(`"group": "300",`, ``), "app.group"},
		{"colon in user", edit(`"user": "100"`, `"user": "1:2"`), "app.user"},
		{"relative workdir", edit(`"/opt/work"`, `"opt/work"`), "app.workingDirectory"},
		{"bad env name", edit(`"GREETING"`, `"GREET-ING"`), "app.environment[0].name"},
		{"bad dependency name", edit(`"example.com/base"`, `""`), "dependencies[0].imageName"},
		{"bad dependency id", edit(`"imageName": "example.com/base",`, `"imageName": "example.com/base", "imageID": "sha256-abc",`), "dependencies[0].imageID"},
		{"bad annotation", edit(`"created"`, `"Created"`), "annotations[0].name"},
		{"too big", `{"acKind":"` + strings.Repeat("x", maxManifestSize) + `"}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(c.data))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a *ManifestError", err)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err %v is not ErrInvalidArgument", err)
			}
			if me.Field != c.field {
				t.Errorf("field %q, want %q (%v)", me.Field, c.field, err)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	id := "sha512-" + strings.Repeat("ab", 64)
	cases := []struct {
		in   string
		want Request
	}{
		{"example.com/hello", Request{Name: "example.com/hello", Labels: map[string]string{}}},
		{"appc:example.com/hello:1.0.0", Request{Name: "example.com/hello", Labels: map[string]string{"version": "1.0.0"}}},
		{"hello:1.0,os=linux,arch=aarch64", Request{Name: "hello", Labels: map[string]string{"version": "1.0", "os": "linux", "arch": "aarch64"}}},
		{"hello,env=a%2Cb", Request{Name: "hello", Labels: map[string]string{"env": "a,b"}}},
		{id, Request{ID: id}},
		{"appc:" + id, Request{ID: id}},
	}
	for _, c := range cases {
		got, err := ParseReference(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.String() != c.want.String() {
			t.Errorf("%s: got %s, want %s", c.in, got, c.want)
		}
		back, err := ParseReference(got.String())
		if err != nil || back.String() != got.String() {
			t.Errorf("%s: does not round-trip: %s, %v", c.in, back, err)
		}
	}
	for _, bad := range []string{"", "Hello", "hello:", "hello,os", "hello,name=x", "hello,os=a,os=b", "sha512-abc", "sha512-" + strings.Repeat("AB", 64), "hello,x=%zz"} {
		if _, err := ParseReference(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestSimpleDiscoveryURL(t *testing.T) {
	arch := HostArch()
	cases := []struct {
		prefix string
		req    Request
		want   string
	}{
		{"http://127.0.0.1:8080/", Request{Name: "example.com/hello", Labels: map[string]string{"version": "1.0.0", "os": "linux", "arch": "amd64"}},
			"http://127.0.0.1:8080/example.com/hello-1.0.0-linux-amd64.aci"},
		{"https://images.example.com/aci/", Request{Name: "hello"}, "https://images.example.com/aci/hello-latest-linux-" + arch + ".aci"},
		{"file:///srv/aci/", Request{Name: "hello", Labels: map[string]string{"version": "../../etc/x"}},
			"file:///srv/aci/hello-..%2F..%2Fetc%2Fx-linux-" + arch + ".aci"},
		{"http://", Request{Name: "localhost/hello", Labels: map[string]string{"version": "2"}}, "http://localhost/hello-2-linux-" + arch + ".aci"},
	}
	for _, c := range cases {
		got, err := SimpleDiscoveryURL(c.prefix, c.req)
		if err != nil || got != c.want {
			t.Errorf("%s %s: %q, %v; want %q", c.prefix, c.req, got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://x/", "127.0.0.1:80/", ""} {
		if _, err := SimpleDiscoveryURL(bad, Request{Name: "hello"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("prefix %q: err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestHostArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "386": "i386", "arm64": "aarch64", "arm": "armv7l", "s390x": "s390x"} {
		if got := appcArch(goarch); got != want {
			t.Errorf("%s: %s, want %s", goarch, got, want)
		}
	}
}

func TestRequestMatches(t *testing.T) {
	m := Manifest{Name: "hello", Labels: Labels{{"version", "1"}, {"os", "linux"}}}
	cases := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{}, true},
		{map[string]string{"version": "1"}, true},
		{map[string]string{"version": "2"}, false},
		{map[string]string{"arch": "amd64"}, true}, // no arch label: any arch
		{map[string]string{"os": "freebsd"}, false},
		{map[string]string{"env": "canary"}, false},
	}
	for _, c := range cases {
		if got := (Request{Name: "hello", Labels: c.labels}).matches(m); got != c.want {
			t.Errorf("%v: %v, want %v", c.labels, got, c.want)
		}
	}
	if (Request{Name: "other"}).matches(m) {
		t.Error("another name matches")
	}
}

// FuzzParseManifest: any input parses or gives a *ManifestError, never a
// panic; what parses validates again and keeps its name.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"a"}`))
	f.Add([]byte(`{"app":{"exec":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil || !ValidName(m.Name) {
			t.Fatalf("parsed %+v but %v", m, err)
		}
	})
}

// FuzzParseReference: a reference that parses formats back to one that
// parses to the same request.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"example.com/app:1.0,os=linux", "appc:sha512-" + strings.Repeat("0", 128), "a,b=%2C"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		r, err := ParseReference(ref)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		back, err := ParseReference(r.String())
		if err != nil || back.String() != r.String() {
			t.Fatalf("%q -> %q -> %q, %v", ref, r, back, err)
		}
	})
}
