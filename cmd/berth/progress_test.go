package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/process/errdefs"
)

// screen replays what a terminal is sent — text, \r, \n and the CSI
// sequences the tty view uses (n A up, n B down, 2 K clear line) — and
// returns the lines left on the screen.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	row, col := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, "")
		}
		line := []rune(lines[row])
		for len(line) < col {
			line = append(line, ' ')
		}
		if col < len(line) {
			line[col] = r
		} else {
			line = append(line, r)
		}
		lines[row] = string(line)
		col++
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		case 0x1b:
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9') {
				j++
			}
			if i+1 >= len(rs) || rs[i+1] != '[' || j >= len(rs) {
				t.Fatalf("unexpected escape at %d: %q", i, string(rs[i:min(i+10, len(rs))]))
			}
			n, _ := strconv.Atoi(string(rs[i+2 : j]))
			switch rs[j] {
			case 'A':
				row -= n
			case 'B':
				row += n
			case 'K':
				if row < len(lines) {
					lines[row] = ""
				}
			default:
				t.Fatalf("unexpected sequence %q", string(rs[i:j+1]))
			}
			if row < 0 {
				t.Fatalf("cursor above the first line at %d", i)
			}
			i = j
		default:
			put(r)
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

const (
	layerA = "sha256:aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
	layerB = "sha256:bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
)

// pullEvents are the events of a pull of two layers, B already cached.
func pullEvents() []store.Progress {
	ev := func(id string, ph store.Phase, cur, total uint64) store.Progress {
		return store.Progress{Reference: "r", LayerID: id, Phase: ph, Current: cur, Total: total}
	}
	return []store.Progress{
		ev(layerA, store.PhaseWaiting, 0, 4<<20), ev(layerB, store.PhaseWaiting, 0, 100),
		ev(layerA, store.PhaseDownloading, 0, 4<<20), ev(layerB, store.PhaseCached, 100, 100),
		ev(layerA, store.PhaseDownloading, 1<<20, 4<<20), ev(layerA, store.PhaseDownloading, 2<<20, 4<<20),
		ev(layerA, store.PhaseDownloading, 4<<20, 4<<20), ev(layerA, store.PhaseExtracting, 4<<20, 4<<20),
		ev(layerA, store.PhaseDone, 4<<20, 4<<20),
	}
}

// TestTTYView: one line per layer, rewritten in place, as narrow as the
// terminal; what stays on the screen is each layer's last state.
func TestTTYView(t *testing.T) {
	check := func(got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	var tty bytes.Buffer
	v := &ttyView{textResult: textResult{out: io.Discard, errOut: io.Discard}, tty: &tty, width: 80, line: map[string]int{}}
	for i, p := range pullEvents() {
		v.progress(p)
		if i == 5 {
			check(screen(t, tty.String()), []string{"aaaaaaaaaaaa: Downloading [===============>              ] 2.0 MiB/4.0 MiB", "bbbbbbbbbbbb: Already exists"})
		}
	}
	check(screen(t, tty.String()), []string{"aaaaaaaaaaaa: Pull complete", "bbbbbbbbbbbb: Already exists"})

	// On a narrow terminal no line reaches the last column (it would wrap).
	tty.Reset()
	v = &ttyView{textResult: textResult{out: io.Discard, errOut: io.Discard}, tty: &tty, width: 30, line: map[string]int{}}
	for i, p := range pullEvents() {
		v.progress(p)
		if i == 5 {
			check(screen(t, tty.String()), []string{"aaaaaaaaaaaa: Downloading [==", "bbbbbbbbbbbb: Already exists"})
		}
	}
}

// TestLineView: without a terminal, a line per phase change only.
func TestLineView(t *testing.T) {
	var errOut bytes.Buffer
	v := &lineView{textResult: textResult{out: io.Discard, errOut: &errOut}, phase: map[string]store.Phase{}}
	for _, p := range pullEvents() {
		v.progress(p)
	}
	want := `aaaaaaaaaaaa: Waiting
bbbbbbbbbbbb: Waiting
aaaaaaaaaaaa: Downloading 4.0 MiB
bbbbbbbbbbbb: Already exists
aaaaaaaaaaaa: Extracting 4.0 MiB
aaaaaaaaaaaa: Pull complete
`
	if errOut.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", errOut.String(), want)
	}
}

// TestJSONView: one JSON object a line: every event, then the result, or
// an error with its class.
func TestJSONView(t *testing.T) {
	var out bytes.Buffer
	v := &jsonView{out: &out}
	for _, p := range pullEvents() {
		v.progress(p)
	}
	v.result(store.Image{Reference: "r", Digest: "sha256:d", LayerIDs: []string{layerA, layerB}, Size: 7, Source: "registry"})
	v.fail("x", fmt.Errorf("image x: %w", errdefs.ErrPermissionDenied))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(pullEvents())+2 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["type"] != "progress" || first["phase"] != "waiting" || first["current"] != 0.0 || first["total"] != float64(4<<20) || first["layer"] != layerA {
		t.Errorf("first event %v", first)
	}
	var res resultEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-2]), &res); err != nil || res.Type != "result" || len(res.Layers) != 2 || res.Size != 7 || res.Digest != "sha256:d" {
		t.Errorf("result %s: %v", lines[len(lines)-2], err)
	}
	var e errorEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil || e.Type != "error" || e.Code != "PERMISSION_DENIED" || e.Reference != "x" {
		t.Errorf("error %s: %v", lines[len(lines)-1], err)
	}
}

// openPty opens a pseudo-terminal pair (posix_openpt, unlockpt, ptsname)
// of the given width.
func openPty(t *testing.T, cols uint16) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { _ = ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	t.Cleanup(func() { _ = pts.Close() })
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: 40}); err != nil {
		t.Fatalf("set the window size: %v", err)
	}
	return ptmx, pts
}

// TestPullOnTerminal: berth image pull with stderr on a real terminal
// (a pty) draws one line per layer, updated in place, and ends with every
// layer complete; the result line goes to stdout.
func TestPullOnTerminal(t *testing.T) {
	h := newHost(t)
	lines, sent, stdout := onTerminal(t, "image", "pull", "--work_dir="+h.work, "localhost/berth/default")
	if len(lines) != 3 || lines[0] != "Pulling localhost/berth/default" {
		t.Fatalf("screen:\n%s\nsent: %q", strings.Join(lines, "\n"), sent)
	}
	for _, l := range lines[1:] {
		if !strings.HasSuffix(l, ": Pull complete") {
			t.Errorf("layer line %q, want complete; screen:\n%s", l, strings.Join(lines, "\n"))
		}
	}
	if !strings.Contains(sent, "\x1b[") {
		t.Errorf("nothing was redrawn in place: %q", sent)
	}
	if !strings.HasPrefix(stdout, "localhost/berth/default:latest sha256:") {
		t.Errorf("stdout %q", stdout)
	}
	// Not on a terminal: a line per phase change, no escape sequences.
	cmd := exec.Command(berthBin, "image", "pull", "--work_dir="+h.work, "localhost/berth/default")
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errOut
	if err := cmd.Run(); err != nil || strings.Contains(errOut.String(), "\x1b") || strings.Count(errOut.String(), "Already exists") != 2 {
		t.Errorf("not on a terminal: %v\n%q", err, errOut.String())
	}
}

// TestPullJSONErrors: with --output=json, an error is a JSON object on
// stdout with its class, and the exit status is 1; a bad --output is a
// usage error.
func TestPullJSONErrors(t *testing.T) {
	work := filepath.Join(t.TempDir(), "work")
	cmd := exec.Command(berthBin, "image", "pull", "--work_dir="+work, "--output=json", "berth/none:v1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var events []errorEvent
	for sc.Scan() {
		var e errorEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	if len(events) != 1 || events[0].Type != "error" || events[0].Code != "NOT_FOUND" || events[0].Reference != "berth/none:v1" || !strings.Contains(events[0].Error, "docker.io/berth/none:v1") {
		t.Errorf("events %+v", events)
	}
	if err := exec.Command(berthBin, "image", "pull", "--output=yaml", "x").Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("--output=yaml: %v", err)
	}
}

// onTerminal runs berth with args and stderr on a pty, and returns what
// the terminal shows, what was sent to it, and stdout.
func onTerminal(t *testing.T, args ...string) (lines []string, sent, stdout string) {
	t.Helper()
	ptmx, pts := openPty(t, 100)
	cmd := exec.Command(berthBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pts.Close()
	var tty bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(&tty, ptmx)
		done <- err
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("berth %s: %v\n%s", args[0], err, tty.String())
	}
	// Reading the master ends with EIO once no process holds the pts.
	if err := <-done; err != nil && !errors.Is(err, unix.EIO) {
		t.Fatal(err)
	}
	return screen(t, tty.String()), tty.String(), out.String()
}

// executeOnTerminal runs berth execute on h with stderr on a pty.
func executeOnTerminal(t *testing.T, h *host, args ...string) ([]string, string) {
	t.Helper()
	lines, _, out := onTerminal(t, append([]string{"execute", "--work_dir=" + h.work, "--runtime_dir=" + h.runtime}, args...)...)
	return lines, out
}

// TestExecuteShowsPullsOnTerminal: berth execute draws the progress of the
// image it has to import on a terminal, as docker run does; with the image
// stored, or with stderr not a terminal, it draws nothing.
func TestExecuteShowsPullsOnTerminal(t *testing.T) {
	h := newHost(t)
	lines, out := executeOnTerminal(t, h, "--command=echo ran")
	if out != "ran\n" || len(lines) != 3 || lines[0] != "Pulling localhost/berth/default:latest" {
		t.Fatalf("first run: stdout %q, screen:\n%s", out, strings.Join(lines, "\n"))
	}
	for _, l := range lines[1:] {
		if !strings.HasSuffix(l, ": Pull complete") {
			t.Errorf("layer line %q, want complete", l)
		}
	}
	if lines, out := executeOnTerminal(t, h, "--command=echo again"); out != "again\n" || len(lines) != 0 {
		t.Errorf("stored image: stdout %q, screen:\n%s", out, strings.Join(lines, "\n"))
	}
	h2 := newHost(t)
	if _, errOut, code := h2.execute(t, "--command=true"); code != 0 || errOut != "" {
		t.Errorf("not on a terminal: exit %d, stderr %q", code, errOut)
	}
}
