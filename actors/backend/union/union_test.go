package union

import (
	"slices"
	"testing"
)

func TestDedupe(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"/a"}, []string{"/a"}},
		{[]string{"/a", "/b", "/c"}, []string{"/a", "/b", "/c"}},
		{[]string{"/e", "/a", "/e", "/b", "/e"}, []string{"/a", "/b", "/e"}},
		{[]string{"/e", "/a", "/e/", "/b", "/e"}, []string{"/a", "/b", "/e"}},
		{[]string{"/a", "/b", "/a/", "/c"}, []string{"/b", "/a/", "/c"}},
	} {
		if got := Dedupe(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Dedupe(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDirsFor(t *testing.T) {
	const bd = "/var/lib/berth/provisioner/containers/c1/backends/overlay"
	want := Dirs{Rootfs: bd + "/rootfses/r1", ID: "r1", Scratch: bd + "/scratch/r1", Links: bd + "/links/r1"}
	if got := DirsFor(bd+"/rootfses/r1", bd); got != want {
		t.Errorf("DirsFor = %+v\nwant %+v", got, want)
	}
}
