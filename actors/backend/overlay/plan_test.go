package overlay

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berthrt/berth/process/errdefs"

	"github.com/berthrt/berth/actors/backend/union"
)

// mesosLayer returns a layer path as long as the docker store's (141
// bytes, the length measured in the shared notes).
func mesosLayer(i int) string {
	p := fmt.Sprintf("/var/lib/berth/store/docker/layers/sha256_%064d/rootfs.overlay", i)
	return p + strings.Repeat("x", 141-len(p))
}

func testPaths() paths {
	return pathsFor("/var/lib/berth/provisioner/containers/c1/backends/overlay/rootfses/r1",
		"/var/lib/berth/provisioner/containers/c1/backends/overlay")
}

func TestPathsFor(t *testing.T) {
	p := testPaths()
	const bd = "/var/lib/berth/provisioner/containers/c1/backends/overlay"
	want := paths{
		Dirs:  union.Dirs{Rootfs: bd + "/rootfses/r1", ID: "r1", Scratch: bd + "/scratch/r1", Links: bd + "/links/r1"},
		upper: bd + "/scratch/r1/upperdir",
		work:  bd + "/scratch/r1/workdir",
	}
	if p != want {
		t.Errorf("pathsFor = %+v\nwant %+v", p, want)
	}
}

func TestFsconfigPlan(t *testing.T) {
	p := testPaths()
	got := fsconfigPlan([]string{"/l/bottom", "/l/middle", "/l/top"}, p)
	want := []option{
		{"source", "overlay"},
		{"lowerdir+", "/l/top"},
		{"lowerdir+", "/l/middle"},
		{"lowerdir+", "/l/bottom"},
		{"upperdir", p.upper},
		{"workdir", p.work},
		{"index", "off"},
		{"metacopy", "off"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("fsconfigPlan =\n%v\nwant\n%v", got, want)
	}
	// Paths are passed verbatim, special characters included.
	got = fsconfigPlan([]string{"/l/a:b,c\\d"}, p)
	if got[1] != (option{"lowerdir+", "/l/a:b,c\\d"}) {
		t.Errorf("special characters changed: %v", got[1])
	}
}

func TestPlanLegacyDirect(t *testing.T) {
	p := testPaths()
	plan, err := planLegacy([]string{"/l/0", "/l/1", "/l/2"}, p, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := "lowerdir=/l/2:/l/1:/l/0,upperdir=" + p.upper + ",workdir=" + p.work + ",index=off,metacopy=off"
	if plan.data != want || plan.links != nil || plan.cwd != "" {
		t.Errorf("planLegacy = %+v\nwant data %q, no links, no cwd", plan, want)
	}
}

func TestPlanLegacyLinks(t *testing.T) {
	p := testPaths()
	layers := []string{"/l/0", "/l/1", "/l/2"}
	plan, err := planLegacy(layers, p, 128) // too small for the direct form
	if err != nil {
		t.Fatal(err)
	}
	want := "lowerdir=2:1:0,upperdir=../../scratch/r1/upperdir,workdir=../../scratch/r1/workdir,index=off,metacopy=off"
	if plan.data != want {
		t.Errorf("data = %q\nwant   %q", plan.data, want)
	}
	if !slices.Equal(plan.links, layers) || plan.cwd != p.Links {
		t.Errorf("links = %v, cwd = %q; want %v, %q", plan.links, plan.cwd, layers, p.Links)
	}
}

// TestPlanLegacyPageBoundary checks the exact limit: the option string
// and its NUL must fit in the page.
func TestPlanLegacyPageBoundary(t *testing.T) {
	p := testPaths()
	direct := len(optionString([]string{"/l/a"}, p.upper, p.work))
	for _, tc := range []struct {
		page      int
		wantLinks bool
	}{
		{direct + 1, false}, // string + NUL fit exactly
		{direct, true},      // one byte short
	} {
		plan, err := planLegacy([]string{"/l/a"}, p, tc.page)
		if err != nil {
			t.Fatalf("page %d: %v", tc.page, err)
		}
		if got := plan.links != nil; got != tc.wantLinks {
			t.Errorf("page %d (string %d bytes): links = %v, want %v", tc.page, direct, got, tc.wantLinks)
		}
		if len(plan.data) > tc.page-1 {
			t.Errorf("page %d: %d-byte string does not fit", tc.page, len(plan.data))
		}
	}
}

func TestPlanLegacySpecialCharacters(t *testing.T) {
	p := testPaths()
	for _, l := range []string{"/l/a:b", "/l/a,b", `/l/a\b`} {
		plan, err := planLegacy([]string{"/l/ok", l}, p, 4096)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if plan.links == nil || strings.Contains(plan.data, l) {
			t.Errorf("%q: named directly in %q, want links", l, plan.data)
		}
	}
	bad := pathsFor("/b/rootfses/r,1", "/b")
	if _, err := planLegacy([]string{"/l/a:b"}, bad, 4096); !errdefs.IsInvalidArgument(err) {
		t.Errorf("rootfs id with a comma: %v, want ErrInvalidArgument", err)
	}
}

// TestPlanLegacyManyLayers: Mesos-length paths stop fitting at 29 layers
// at the latest (as measured in the shared notes, with shorter upper and
// work dirs); links fit up to MaxLayers.
func TestPlanLegacyManyLayers(t *testing.T) {
	p := testPaths()
	for _, n := range []int{1, 28, 29, 64, 128, 200, MaxLayers} {
		layers := make([]string, n)
		for i := range layers {
			layers[i] = mesosLayer(i)
		}
		plan, err := planLegacy(layers, p, 4096)
		if err != nil {
			t.Fatalf("%d layers: %v", n, err)
		}
		wantLinks := len(optionString(union.TopFirst(layers), p.upper, p.work)) >= 4096
		if n >= 29 && !wantLinks {
			t.Errorf("%d layers of 141 bytes fit in a page", n)
		}
		if (plan.links != nil) != wantLinks {
			t.Errorf("%d layers: links = %v, want %v (%d-byte string)", n, plan.links != nil, wantLinks, len(plan.data))
		}
		if len(plan.data) >= 4096 {
			t.Errorf("%d layers: %d-byte string", n, len(plan.data))
		}
		lower := strings.TrimPrefix(strings.Split(plan.data, ",")[0], "lowerdir=")
		entries := strings.Split(lower, ":")
		if len(entries) != n {
			t.Fatalf("%d layers: %d lower entries", n, len(entries))
		}
		top := layers[n-1]
		if plan.links != nil {
			top = fmt.Sprint(n - 1)
		}
		if entries[0] != top {
			t.Errorf("%d layers: first lowerdir %q, want the top layer %q", n, entries[0], top)
		}
	}
	if _, err := planLegacy(make([]string, MaxLayers+1), p, 4096); !errdefs.IsInvalidArgument(err) {
		t.Errorf("%d layers: %v, want ErrInvalidArgument", MaxLayers+1, err)
	}
	many := make([]string, MaxLayers)
	for i := range many {
		many[i] = mesosLayer(i)
	}
	if _, err := planLegacy(many, p, 1024); !errdefs.IsInvalidArgument(err) {
		t.Errorf("%d layers in a 1 KiB page: %v, want ErrInvalidArgument", MaxLayers, err)
	}
}

func TestCheckPaths(t *testing.T) {
	for _, tc := range []struct{ rootfs, backendDir string }{
		{"rel/rootfs", "/b"},
		{"/b/rootfses/r", "rel"},
		{"/", "/b"},
	} {
		if _, err := checkPaths(tc.rootfs, tc.backendDir); !errdefs.IsInvalidArgument(err) {
			t.Errorf("checkPaths(%q, %q) = %v, want ErrInvalidArgument", tc.rootfs, tc.backendDir, err)
		}
	}
}

func TestCheckLayers(t *testing.T) {
	dir := t.TempDir()
	rootfs := dir + "/b/rootfses/r"
	for _, tc := range []struct {
		name   string
		layers []string
		check  func(error) bool
	}{
		{"none", nil, errdefs.IsInvalidArgument},
		{"relative", []string{"layer"}, errdefs.IsInvalidArgument},
		{"missing", []string{dir + "/missing"}, errdefs.IsNotFound},
		{"contains rootfs", []string{dir}, errdefs.IsInvalidArgument},
		{"root", []string{"/"}, errdefs.IsInvalidArgument},
		{"inside rootfs", []string{rootfs + "/x"}, errdefs.IsInvalidArgument},
		{"too many", make([]string, MaxLayers+1), errdefs.IsInvalidArgument},
	} {
		if err := checkLayers(tc.layers, rootfs); !tc.check(err) {
			t.Errorf("%s: checkLayers = %v", tc.name, err)
		}
	}
}
