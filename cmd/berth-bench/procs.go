package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/errdefs"
)

// runProcs starts every argv at once and returns the time from just before
// the first start to the last exit. Any failure (start, non-zero exit) is
// an error carrying the command's output.
func runProcs(ctx context.Context, argvs [][]string) (time.Duration, error) {
	errs := make([]error, len(argvs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, argv := range argvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	return d, errors.Join(errs...)
}

// peerServerCmd is the hidden subcommand that runs peers in a private
// mount namespace without the cgroup2 mount (see peerServer).
const peerServerCmd = "peer-server"

// peerRequest asks the peer server to run argvs at once.
type peerRequest struct {
	Argvs [][]string `json:"argvs"`
}

// peerResponse is runProcs' result.
type peerResponse struct {
	Nanos int64  `json:"nanos"`
	Err   string `json:"err,omitempty"`
}

// peerServer serves peerRequests, one JSON line each, from in to out. It is
// started by startPeerServer in a new mount namespace (the clone of the
// host's, made private by Go's exec before this program ran), and first
// detaches the cgroup2 mount of this hybrid host there: crun 1.8 refuses
// to run while a controller (hugetlb here) is enabled on cgroup2, even with
// --cgroup-manager=disabled. The host's own mounts are untouched.
func peerServer(in io.Reader, out io.Writer) int {
	for _, m := range []string{"/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(m, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			// MNT_DETACH: nothing in this namespace uses it; only this
			// namespace loses it.
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				fmt.Fprintf(os.Stderr, "peer-server: umount %s: %v\n", m, err)
				return 1
			}
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req peerRequest
		var resp peerResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Err = err.Error()
		} else {
			d, err := runProcs(context.Background(), req.Argvs)
			resp.Nanos = d.Nanoseconds()
			if err != nil {
				resp.Err = err.Error()
			}
		}
		if err := enc.Encode(resp); err != nil {
			return 1
		}
	}
	return 0
}

// peerClient talks to a peer server.
type peerClient struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	done chan struct{}
}

// startPeerServer runs this program's peer-server in a new mount namespace.
func startPeerServer() (*peerClient, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, peerServerCmd)
	// CLONE_NEWNS in Unshareflags: Go's child unshares the mount namespace
	// and remounts / recursively private before exec, so nothing the
	// server unmounts propagates back to the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("peer server: %w", err)
	}
	c := &peerClient{cmd: cmd, in: in, out: bufio.NewScanner(out), done: make(chan struct{})}
	c.out.Buffer(make([]byte, 1<<20), 16<<20)
	go func() { _ = cmd.Wait(); close(c.done) }()
	return c, nil
}

// run runs argvs at once in the server's namespace.
func (c *peerClient) run(argvs [][]string) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.Marshal(peerRequest{Argvs: argvs})
	if err != nil {
		return 0, err
	}
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return 0, fmt.Errorf("peer server: %v: %w", err, errdefs.ErrUnavailable)
	}
	if !c.out.Scan() {
		return 0, fmt.Errorf("peer server ended: %w", errdefs.ErrUnavailable)
	}
	var resp peerResponse
	if err := json.Unmarshal(c.out.Bytes(), &resp); err != nil {
		return 0, fmt.Errorf("peer server: %v: %w", err, errdefs.ErrInternal)
	}
	if resp.Err != "" {
		return time.Duration(resp.Nanos), errors.New(resp.Err)
	}
	return time.Duration(resp.Nanos), nil
}

// close ends the server (EOF on its stdin) and waits for it.
func (c *peerClient) close() {
	_ = c.in.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}
