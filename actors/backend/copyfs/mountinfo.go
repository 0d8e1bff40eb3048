package copyfs

import (
	"fmt"
	"os"
	"strings"

	pmount "github.com/berthrt/berth/process/mount"
)

// mountsUnder returns the mount points at or below the directory entry base
// of the directory open at pfd, as /proc/self/mountinfo lists them. The
// parent's path comes from /proc/self/fd/<pfd>, so it is the resolved path
// the kernel reports mounts by.
//
// This is the up-front check that lets Destroy refuse before removing
// anything; the descriptor walk checks mount ids again as it goes.
func mountsUnder(pfd int, base string) ([]string, error) {
	parent, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pfd))
	if err != nil {
		return nil, err
	}
	return pmount.MountsUnder(strings.TrimSuffix(parent, "/") + "/" + base)
}
