package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthrt/berth/actors/actortest"
	"github.com/berthrt/berth/actors/store/appc"
	"github.com/berthrt/berth/fixtures/aci"
	"github.com/berthrt/berth/fixtures/layers"
	"github.com/berthrt/berth/fixtures/rootfs"
)

// appcFixtures builds two ACIs: example.com/base:1 (a busybox rootfs with a
// user and a group of its own and a file only it has) and
// example.com/app:1.0, which depends on base by name and version and whose
// app sets exec, user, group, workingDirectory and environment.
func appcFixtures(t *testing.T, dir string) (base, app aci.Image) {
	t.Helper()
	actortest.RequiresTool(t, rootfs.BusyboxPath, "apt-get install busybox-static")
	rfs := filepath.Join(dir, "base-rootfs")
	if err := rootfs.Busybox(rfs); err != nil {
		t.Fatal(err)
	}
	platform := []string{"os", "linux", "arch", appc.HostArch()}
	base, err := aci.Build(aci.Spec{
		Manifest: aci.Manifest{Name: "example.com/base", Labels: aci.Labels(append([]string{"version", "1"}, platform...)...)},
		Dir:      rfs,
		Files: []layers.Entry{
			{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nworker:x:1234:100:worker:/home/worker:/bin/sh\n"},
			{Name: "etc/group", Body: "root:x:0:\nusers:x:100:\ncrew:x:4321:\n"},
			{Name: "etc/from-base", Body: "laid down by the base image\n"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	script := `echo "user=$(id -u):$(id -g) pwd=$(pwd) greeting=$GREETING args=$*"; cat /etc/from-base; cat note`
	app, err = aci.Build(aci.Spec{
		Manifest: aci.Manifest{
			Name:         "example.com/app",
			Labels:       aci.Labels(append([]string{"version", "1.0"}, platform...)...),
			Dependencies: []aci.Dependency{{ImageName: "example.com/base", Labels: aci.Labels("version", "1")}},
			App: &aci.App{
				Exec: []string{"/bin/sh", "-c", script, "app", "first", "second"}, User: "worker", Group: "crew",
				WorkingDirectory: "/opt/work", Environment: aci.Labels("GREETING", "hello from the manifest"),
			},
		},
		Files: []layers.Entry{
			{Name: "opt/work/", Type: '5', Mode: 0o755},
			{Name: "opt/work/note", Body: "a file of the app image\n"},
		},
		Compression: "gzip",
	})
	if err != nil {
		t.Fatal(err)
	}
	return base, app
}

// TestE2EExecuteAppcImage runs `berth execute --image=appc:...` with the
// images fetched by simple discovery from an HTTP server on 127.0.0.1: the
// output shows the manifest's exec, user, group, working directory and
// environment honoured, and the dependency's files under the app's.
func TestE2EExecuteAppcImage(t *testing.T) {
	h := newHost(t)
	base, app := appcFixtures(t, h.root)
	served := map[string][]byte{
		"/example.com/base-1-linux-" + appc.HostArch() + ".aci":  base.Data,
		"/example.com/app-1.0-linux-" + appc.HostArch() + ".aci": app.Data,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := served[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	prefix := "--appc_simple_discovery_uri_prefix=" + srv.URL + "/"
	want := "user=1234:4321 pwd=/opt/work greeting=hello from the manifest args=first second\nlaid down by the base image\na file of the app image\n"
	for _, backend := range []string{"overlay", "copy"} {
		out, errOut, code := h.execute(t, prefix, "--backend="+backend, "--image=appc:example.com/app:1.0")
		if code != 0 || out != want {
			t.Errorf("%s: exit %d, output %q, want %q; stderr:\n%s", backend, code, out, want, errOut)
		}
	}
	// By id, from the store (the server is gone), with a command of the
	// user's: it replaces exec, the rest of the app still applies.
	srv.Close()
	out, errOut, code := h.execute(t, "--image=appc:"+app.ID, "--command=echo $GREETING; pwd; id -un")
	if code != 0 || out != "hello from the manifest\n/opt/work\nworker\n" {
		t.Errorf("by id: exit %d, output %q; stderr:\n%s", code, out, errOut)
	}
	ls, err := exec.Command(berthBin, "image", "ls", "--work_dir="+h.work).CombinedOutput()
	if err != nil || !strings.Contains(string(ls), "appc:example.com/app:1.0") || !strings.Contains(string(ls), "appc:example.com/base:1") {
		t.Errorf("berth image ls: %v\n%s", err, ls)
	}
	// A bad reference and a missing image fail before anything runs.
	if _, errOut, code := h.execute(t, "--image=appc:Bad_Name", "--command=true"); code != 2 || !strings.Contains(errOut, "Bad_Name") {
		t.Errorf("bad name: exit %d; stderr:\n%s", code, errOut)
	}
	if _, errOut, code := h.execute(t, "--image=appc:example.com/missing:1", "--appc_simple_discovery_uri_prefix=none", "--command=true"); code != 125 || !strings.Contains(errOut, "example.com/missing") {
		t.Errorf("missing image: exit %d; stderr:\n%s", code, errOut)
	}
	// berth image rm and prune remove appc images.
	if out, err := exec.Command(berthBin, "image", "rm", "appc:example.com/app:1.0", "--work_dir="+h.work).CombinedOutput(); err != nil {
		t.Errorf("berth image rm: %v\n%s", err, out)
	}
	if out, err := exec.Command(berthBin, "image", "prune", "--work_dir="+h.work).CombinedOutput(); err != nil || !strings.Contains(string(out), "appc:example.com/base:1") {
		t.Errorf("berth image prune: %v\n%s", err, out)
	}
	for _, d := range []string{"images", "removed"} {
		if ents, _ := os.ReadDir(filepath.Join(h.work, "store", "appc", d)); len(ents) != 0 {
			t.Errorf("store/appc/%s holds %d entries after prune", d, len(ents))
		}
	}
}
