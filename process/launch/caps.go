package launch

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultCapabilities is what a container's command may hold: Docker's
// default set (CapBnd 0x00000000a80425fb). Everything else — SYS_ADMIN,
// SYS_PTRACE, SYS_MODULE, NET_ADMIN, ... — is dropped from the bounding set
// before exec, so no process of the container can regain it; without
// SYS_PTRACE the command cannot reach the non-dumpable init through /proc.
var DefaultCapabilities = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_KILL,
	unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE, unix.CAP_NET_RAW,
	unix.CAP_SYS_CHROOT, unix.CAP_MKNOD, unix.CAP_AUDIT_WRITE, unix.CAP_SETFCAP,
}

// limitCapabilities drops every capability not in keep from the bounding
// set and empties the inheritable and ambient sets. The init keeps its own
// effective set (it needs none of it after this point); an exec'd command
// running as root gets exactly keep, one running as another user nothing.
func limitCapabilities(keep []uintptr) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	allowed := map[uintptr]bool{}
	for _, c := range keep {
		allowed[c] = true
	}
	for c := uintptr(0); c <= last; c++ {
		if allowed[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: %w", err)
	}
	return nil
}

func lastCap() (uintptr, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("capabilities: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("capabilities: cap_last_cap %q", b)
	}
	return uintptr(n), nil
}
