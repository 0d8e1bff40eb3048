package mount

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want Options
	}{
		{"empty", nil, Options{}},
		{"proc", []string{"nosuid", "noexec", "nodev"}, Options{Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV}},
		{"tmpfs data", []string{"nosuid", "mode=755", "size=65536k"}, Options{Flags: unix.MS_NOSUID, Data: "mode=755,size=65536k"}},
		{"ro", []string{"ro"}, Options{Flags: unix.MS_RDONLY, ReadOnly: true}},
		{"rw clears ro", []string{"ro", "rw"}, Options{}},
		{"rbind", []string{"rbind", "rw"}, Options{Flags: unix.MS_BIND | unix.MS_REC, Bind: true, Recursive: true}},
		{"bind ro", []string{"bind", "ro"}, Options{Flags: unix.MS_BIND | unix.MS_RDONLY, Bind: true, ReadOnly: true}},
		{"propagation", []string{"rbind", "rslave"}, Options{Flags: unix.MS_BIND | unix.MS_REC, Bind: true, Recursive: true, Propagation: unix.MS_SLAVE | unix.MS_REC}},
		{"devpts", []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}, Options{Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("ParseOptions(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range [][]string{{""}, {"a,b"}, {"x\x00"}} {
		if _, err := ParseOptions(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseOptions(%q) = %v, want invalid argument", bad, err)
		}
	}
}
