package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berthrt/berth/process/errdefs"
)

func TestParseNamed(t *testing.T) {
	digest := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		in, want, familiar string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"},
		{"berth/test", "docker.io/berth/test:latest", "berth/test:latest"},
		{"quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"},
		{"localhost/berth/default:latest", "localhost/berth/default:latest", "localhost/berth/default:latest"},
		{"localhost:5000/a", "localhost:5000/a:latest", "localhost:5000/a:latest"},
		{"registry.io:80/library/busybox@" + digest, "registry.io:80/library/busybox@" + digest, "registry.io:80/library/busybox@" + digest},
		{"busybox@" + digest, "docker.io/library/busybox@" + digest, "busybox@" + digest},
		{"busybox:1@" + digest, "docker.io/library/busybox:1@" + digest, "busybox:1@" + digest},
		{"a/b/c/d", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"},
		{"my_image__x-y.z", "docker.io/library/my_image__x-y.z:latest", "my_image__x-y.z:latest"},
		{"Registry/x", "Registry/x:latest", "Registry/x:latest"},
		// Docker's rules, case by case (distribution/reference's
		// ParseNormalizedNamed and FamiliarString).
		{"index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"},
		{"library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
		{"docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
		{"docker.io", "docker.io/library/docker.io:latest", "docker.io:latest"},
		{"localhost", "docker.io/library/localhost:latest", "localhost:latest"},
		{"foo.com/bar", "foo.com/bar:latest", "foo.com/bar:latest"},
		{"foo:5000/bar", "foo:5000/bar:latest", "foo:5000/bar:latest"},
		{"LOCALHOST/x", "LOCALHOST/x:latest", "LOCALHOST/x:latest"},
		{"[::1]:5000/berth/test:v1", "[::1]:5000/berth/test:v1", "[::1]:5000/berth/test:v1"},
		{"[fe80::1]/x", "[fe80::1]/x:latest", "[fe80::1]/x:latest"},
		{"registry-1.docker.io/x/y", "registry-1.docker.io/x/y:latest", "registry-1.docker.io/x/y:latest"},
		{"a--b/c.d_e", "docker.io/a--b/c.d_e:latest", "a--b/c.d_e:latest"},
		{"busybox:Latest_1.0-x", "docker.io/library/busybox:Latest_1.0-x", "busybox:Latest_1.0-x"},
		{"x@sha512:" + strings.Repeat("ab", 64), "docker.io/library/x@sha512:" + strings.Repeat("ab", 64), "x@sha512:" + strings.Repeat("ab", 64)},
		{strings.Repeat("a", 63), "docker.io/library/" + strings.Repeat("a", 63) + ":latest", strings.Repeat("a", 63) + ":latest"},
	} {
		n, err := parseNamed(tc.in)
		if err != nil {
			t.Errorf("parseNamed(%q): %v", tc.in, err)
			continue
		}
		if n.String() != tc.want || n.familiar() != tc.familiar {
			t.Errorf("parseNamed(%q) = %s (familiar %s), want %s (%s)", tc.in, n, n.familiar(), tc.want, tc.familiar)
		}
	}
	for _, bad := range []string{"", "Busybox", "busybox:", "busybox@sha256:12", "a//b", "-a", "a:b:c", "busybox:tag with space", ":tag", "a/B",
		strings.Repeat("0123456789abcdef", 4), "busybox@sha256:" + strings.Repeat("z", 64), "busybox@256:" + strings.Repeat("a", 64),
		"a_-b", "a/.b", "a/b/", "/a", "[::1/x", "busybox:" + strings.Repeat("t", 129), "a.com:/x", "a/" + strings.Repeat("b", 256)} {
		if _, err := parseNamed(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("parseNamed(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestParseRequest(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "busybox:latest.tar")
	if err := os.WriteFile(archive, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "lay:out")
	if err := os.Mkdir(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Store{o: Options{Builtin: func(context.Context, string) (string, error) { return "", nil }, BuiltinReference: "localhost/berth/default:latest"}}
	for _, tc := range []struct {
		in   string
		want request
	}{
		{"docker-archive:" + archive, request{kind: kindArchive, path: archive, source: "docker-archive:" + archive}},
		{"docker-archive:" + archive + ":berth/x", request{kind: kindArchive, path: archive, source: "docker-archive:" + archive + ":docker.io/berth/x:latest"}},
		{"oci:" + layout, request{kind: kindOCI, path: layout, source: "oci:" + layout}},
		{"oci:" + layout + ":v1", request{kind: kindOCI, path: layout, tag: "v1", source: "oci:" + layout + ":v1"}},
		{"localhost/berth/default", request{kind: kindBuiltin, source: "builtin", reference: "localhost/berth/default:latest"}},
		{"busybox", request{kind: kindName, reference: "docker.io/library/busybox:latest", typed: "busybox"}},
		{"docker://busybox", request{kind: kindName, reference: "docker.io/library/busybox:latest", typed: "docker://busybox"}},
	} {
		got, err := s.parseRequest(tc.in)
		if err != nil {
			t.Errorf("parseRequest(%q): %v", tc.in, err)
			continue
		}
		got.want = nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseRequest(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for in, class := range map[string]error{
		"docker-archive:" + dir + "/none.tar": errdefs.ErrNotFound,
		"oci:" + dir + "/none":                errdefs.ErrNotFound,
		"oci:" + dir + "/none:tag":            errdefs.ErrNotFound,
		"docker-archive:":                     errdefs.ErrInvalidArgument,
		"":                                    errdefs.ErrInvalidArgument,
		"Not/A/Name":                          errdefs.ErrInvalidArgument,
	} {
		if _, err := s.parseRequest(in); !errors.Is(err, class) {
			t.Errorf("parseRequest(%q) = %v, want %v", in, err, class)
		}
	}
}

func TestTarballCandidates(t *testing.T) {
	for _, tc := range []struct {
		typed string
		want  []string
	}{
		{"busybox", []string{"/t/busybox.tar", "/t/busybox:latest.tar", "/t/docker.io/library/busybox:latest.tar"}},
		{"busybox:latest", []string{"/t/busybox:latest.tar", "/t/docker.io/library/busybox:latest.tar"}},
		{"quay.io/a/b:v1", []string{"/t/quay.io/a/b:v1.tar"}},
	} {
		n, err := parseNamed(tc.typed)
		if err != nil {
			t.Fatal(err)
		}
		if got := tarballCandidates("/t", tc.typed, n); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("tarballCandidates(%q) = %v, want %v", tc.typed, got, tc.want)
		}
	}
}
