package aufs

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berthrt/berth/process/errdefs"

	"github.com/berthrt/berth/actors/backend/union"
)

// storeLayer returns a layer path as long as the docker store's (141
// bytes).
func storeLayer(i int) string {
	p := fmt.Sprintf("/var/lib/berth/store/docker/layers/sha256_%064d/rootfs", i)
	return p + strings.Repeat("x", 141-len(p))
}

func testPaths() paths {
	return pathsFor("/var/lib/berth/provisioner/containers/c1/backends/aufs/rootfses/r1",
		"/var/lib/berth/provisioner/containers/c1/backends/aufs")
}

func TestPathsFor(t *testing.T) {
	const bd = "/var/lib/berth/provisioner/containers/c1/backends/aufs"
	want := paths{
		Dirs: union.Dirs{Rootfs: bd + "/rootfses/r1", ID: "r1", Scratch: bd + "/scratch/r1", Links: bd + "/links/r1"},
		rw:   bd + "/scratch/r1/workdir",
	}
	if got := testPaths(); got != want {
		t.Errorf("pathsFor = %+v\nwant %+v", got, want)
	}
}

func TestPlanDirect(t *testing.T) {
	p := testPaths()
	plan, err := planMount([]string{"/l/0", "/l/1", "/l/2"}, p, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := "br:" + p.rw + "=rw:/l/2=ro+wh:/l/1=ro+wh:/l/0=ro+wh"
	if plan.data != want || plan.links != nil || plan.cwd != "" {
		t.Errorf("planMount = %+v\nwant data %q, no links, no cwd", plan, want)
	}
}

func TestPlanLinks(t *testing.T) {
	p := testPaths()
	layers := []string{"/l/0", "/l/1", "/l/2"}
	plan, err := planMount(layers, p, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := "br:../../scratch/r1/workdir=rw:2=ro+wh:1=ro+wh:0=ro+wh"
	if plan.data != want {
		t.Errorf("data = %q\nwant   %q", plan.data, want)
	}
	if !slices.Equal(plan.links, layers) || plan.cwd != p.Links {
		t.Errorf("links = %v, cwd = %q; want %v, %q", plan.links, plan.cwd, layers, p.Links)
	}
}

func TestPlanPageBoundary(t *testing.T) {
	p := testPaths()
	n := len(optionString(p.rw, []string{"/l/a"}))
	for _, tc := range []struct {
		page      int
		wantLinks bool
	}{{n + 1, false}, {n, true}} {
		plan, err := planMount([]string{"/l/a"}, p, tc.page)
		if err != nil {
			t.Fatalf("page %d: %v", tc.page, err)
		}
		if got := plan.links != nil; got != tc.wantLinks {
			t.Errorf("page %d (string %d bytes): links = %v, want %v", tc.page, n, got, tc.wantLinks)
		}
	}
}

func TestPlanSpecialCharacters(t *testing.T) {
	p := testPaths()
	for _, l := range []string{"/l/a:b", "/l/a,b", "/l/a=b", `/l/a\b`} {
		plan, err := planMount([]string{"/l/ok", l}, p, 4096)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if plan.links == nil || strings.Contains(plan.data, l) {
			t.Errorf("%q: named directly in %q, want links", l, plan.data)
		}
	}
	if _, err := planMount([]string{"/l/a"}, pathsFor("/b/rootfses/r=1", "/b"), 16); !errdefs.IsInvalidArgument(err) {
		t.Errorf("rootfs id with '=': %v, want ErrInvalidArgument", err)
	}
	if _, err := planMount(nil, p, 4096); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no layers: %v, want ErrInvalidArgument", err)
	}
}

// TestPlanManyLayers: store-length paths overflow the page at a few dozen
// layers; the relative links then fit up to hundreds.
func TestPlanManyLayers(t *testing.T) {
	p := testPaths()
	for _, n := range []int{1, 20, 27, 28, 64, 128, 200, 400} {
		layers := make([]string, n)
		for i := range layers {
			layers[i] = storeLayer(i)
		}
		plan, err := planMount(layers, p, 4096)
		if err != nil {
			t.Fatalf("%d layers: %v", n, err)
		}
		wantLinks := len(optionString(p.rw, union.TopFirst(layers))) >= 4096
		if (plan.links != nil) != wantLinks {
			t.Errorf("%d layers: links = %v, want %v", n, plan.links != nil, wantLinks)
		}
		if n >= 28 && !wantLinks {
			t.Errorf("%d layers of 141 bytes fit in a page", n)
		}
		if len(plan.data) >= 4096 {
			t.Errorf("%d layers: %d-byte string", n, len(plan.data))
		}
		branches := strings.Split(strings.TrimPrefix(plan.data, "br:"), ":")
		if len(branches) != n+1 || !strings.HasSuffix(branches[0], "=rw") {
			t.Fatalf("%d layers: branches %d, first %q", n, len(branches), branches[0])
		}
		top, bottom := layers[n-1], layers[0]
		if wantLinks {
			top, bottom = fmt.Sprint(n-1), "0"
		}
		if branches[1] != top+"=ro+wh" || branches[n] != bottom+"=ro+wh" {
			t.Errorf("%d layers: branches 1 and %d = %q, %q; want the top layer %q and the bottom one %q",
				n, n, branches[1], branches[n], top, bottom)
		}
	}
	many := make([]string, 500)
	for i := range many {
		many[i] = storeLayer(i)
	}
	if _, err := planMount(many, p, 4096); !errdefs.IsInvalidArgument(err) {
		t.Errorf("500 layers: %v, want ErrInvalidArgument (10 bytes a link exceed a page)", err)
	}
}

func TestHasFilesystem(t *testing.T) {
	const procFilesystems = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\nnodev\taufs\n\txfs\n"
	for name, want := range map[string]bool{"aufs": true, "ext4": true, "overlay": true, "btrfs": false, "au": false, "nodev": false} {
		if got := hasFilesystem([]byte(procFilesystems), name); got != want {
			t.Errorf("hasFilesystem(%q) = %v, want %v", name, got, want)
		}
	}
	if hasFilesystem([]byte("nodev\toverlay\n\text4\n"), "aufs") {
		t.Error("aufs found where it is not listed")
	}
}
