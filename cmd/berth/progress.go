package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/actors/store"
	storev1 "github.com/berthrt/berth/messages/store/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// Output formats of berth image pull.
const (
	outputText = "text"
	outputJSON = "json"
)

// pullView shows one pull: its progress events (called from the pull's
// goroutines), then its result or its error.
type pullView interface {
	progress(p store.Progress)
	result(img store.Image)
	fail(ref string, err error)
}

// newPullView picks the view for the output format and for whether stderr
// is a terminal.
func newPullView(output, ref string, stdout, stderr *os.File) pullView {
	if output == outputJSON {
		return &jsonView{out: stdout}
	}
	_, _ = fmt.Fprintf(stderr, "Pulling %s\n", ref)
	if width, ok := terminalWidth(stderr); ok {
		return &ttyView{textResult: textResult{out: stdout, errOut: stderr}, tty: stderr, width: width, line: map[string]int{}}
	}
	return &lineView{textResult: textResult{out: stdout, errOut: stderr}, phase: map[string]store.Phase{}}
}

// terminalWidth reports whether f is a terminal, and its width in columns
// (80 when it does not say).
func terminalWidth(f *os.File) (int, bool) {
	// TCGETS succeeds on terminals only: that is isatty(3).
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return 0, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80, true
	}
	return int(ws.Col), true
}

// shortID is the first 12 hex digits of a layer id, as Docker shows it.
func shortID(id string) string {
	hex := id[strings.IndexByte(id, ':')+1:]
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// textResult prints the result and errors of the text views: the result
// line on stdout (as berth image pull always has), errors on stderr.
type textResult struct {
	mu          sync.Mutex
	out, errOut io.Writer
}

func (v *textResult) result(img store.Image) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, _ = fmt.Fprintf(v.out, "%s %s (%d layers, %s)\n", img.Reference, img.Digest, len(img.LayerIDs), humanSize(img.Size))
}

func (v *textResult) fail(_ string, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, _ = fmt.Fprintf(v.errOut, "berth: %v\n", err)
}

// phaseText is how a text view names a phase and its bytes.
func phaseText(p store.Progress) string {
	switch p.Phase {
	case store.PhaseWaiting:
		return "Waiting"
	case store.PhaseDownloading, store.PhaseExtracting:
		verb := "Downloading"
		if p.Phase == store.PhaseExtracting {
			verb = "Extracting"
		}
		if p.Total == 0 {
			return fmt.Sprintf("%s %s", verb, humanSize(p.Current))
		}
		return fmt.Sprintf("%s %s/%s", verb, humanSize(p.Current), humanSize(p.Total))
	case store.PhaseDone:
		return "Pull complete"
	case store.PhaseCached:
		return "Already exists"
	}
	return p.Phase.String()
}

// lineView writes a line to stderr when a layer changes phase: for logs
// and pipes, where lines cannot be redrawn.
type lineView struct {
	textResult
	phase map[string]store.Phase
}

func (v *lineView) progress(p store.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.phase[p.LayerID] == p.Phase {
		return
	}
	v.phase[p.LayerID] = p.Phase
	text := phaseText(p)
	if p.Phase == store.PhaseDownloading || p.Phase == store.PhaseExtracting {
		// The bytes at the start of a phase say nothing; its size does.
		text, _, _ = strings.Cut(text, " ")
		if p.Total > 0 {
			text += " " + humanSize(p.Total)
		}
	}
	_, _ = fmt.Fprintf(v.errOut, "%s: %s\n", shortID(p.LayerID), text)
}

// ttyView keeps one line per layer on the terminal and rewrites a layer's
// line in place when it changes, as docker pull does.
type ttyView struct {
	textResult
	tty   io.Writer
	width int
	// line is each layer's line, counted from the first; lines is their
	// number. The cursor rests at the start of the line below the last.
	line  map[string]int
	lines int
}

// barWidth is the width of the download bar.
const barWidth = 30

func (v *ttyView) progress(p store.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	text := shortID(p.LayerID) + ": " + phaseText(p)
	if (p.Phase == store.PhaseDownloading || p.Phase == store.PhaseExtracting) && p.Total > 0 {
		done := int(uint64(barWidth) * min(p.Current, p.Total) / p.Total)
		bar := strings.Repeat("=", done)
		if done < barWidth {
			bar += ">" + strings.Repeat(" ", barWidth-done-1)
		}
		verb, _, _ := strings.Cut(phaseText(p), " ")
		text = shortID(p.LayerID) + ": " + verb + " [" + bar + "] " + humanSize(p.Current) + "/" + humanSize(p.Total)
	}
	// A line as wide as the terminal would wrap and break the cursor
	// arithmetic.
	if len(text) >= v.width {
		text = text[:max(v.width-1, 0)]
	}
	i, ok := v.line[p.LayerID]
	if !ok {
		v.line[p.LayerID] = v.lines
		v.lines++
		_, _ = fmt.Fprintf(v.tty, "%s\n", text)
		return
	}
	// Up to the layer's line, clear it, write, and back down (CSI n A,
	// CSI 2 K, CSI n B).
	up := v.lines - i
	_, _ = fmt.Fprintf(v.tty, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, text, up)
}

// jsonView writes newline-delimited JSON to stdout: one object per
// progress event, then one result or error object.
type jsonView struct {
	mu  sync.Mutex
	out io.Writer
}

// The lines of `berth image pull --output json`, told apart by "type".
type (
	progressEvent struct {
		Type      string `json:"type"` // "progress"
		Reference string `json:"reference"`
		Layer     string `json:"layer"`
		Phase     string `json:"phase"`
		Current   uint64 `json:"current"`
		Total     uint64 `json:"total"`
	}
	resultEvent struct {
		Type      string   `json:"type"` // "result"
		Reference string   `json:"reference"`
		Digest    string   `json:"digest"`
		Layers    []string `json:"layers"`
		Size      uint64   `json:"size"`
		Source    string   `json:"source"`
	}
	errorEvent struct {
		Type      string `json:"type"` // "error"
		Reference string `json:"reference"`
		Error     string `json:"error"`
		// Code is the error's class: NOT_FOUND, PERMISSION_DENIED, …
		Code string `json:"code"`
	}
)

func (v *jsonView) write(e any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	_, _ = v.out.Write(append(data, '\n'))
}

func (v *jsonView) progress(p store.Progress) {
	v.write(progressEvent{Type: "progress", Reference: p.Reference, Layer: p.LayerID, Phase: p.Phase.String(), Current: p.Current, Total: p.Total})
}

func (v *jsonView) result(img store.Image) {
	v.write(resultEvent{Type: "result", Reference: img.Reference, Digest: img.Digest, Layers: img.LayerIDs, Size: img.Size, Source: img.Source})
}

func (v *jsonView) fail(ref string, err error) {
	v.write(errorEvent{Type: "error", Reference: ref, Error: err.Error(), Code: strings.TrimPrefix(errdefs.Code(err).String(), "CODE_")})
}

// showPulls draws the progress of the image pulls and imports of an
// embedded agent on tty, when it is a terminal, as `docker run` does before
// a container starts: one view per reference, made at its first event (an
// image already stored has none). It returns the unsubscribe.
func showPulls(sys *actor.ActorSystem, tty *os.File) func() {
	if _, ok := terminalWidth(tty); !ok {
		return func() {}
	}
	var mu sync.Mutex
	views := map[string]pullView{}
	sub := sys.EventStream.Subscribe(func(evt any) {
		p, ok := evt.(*storev1.PullProgress)
		if !ok {
			return
		}
		mu.Lock()
		v := views[p.GetReference()]
		if v == nil {
			v = newPullView(outputText, p.GetReference(), tty, tty)
			views[p.GetReference()] = v
		}
		mu.Unlock()
		v.progress(store.ProgressFromProto(p))
	})
	return func() { sys.EventStream.Unsubscribe(sub) }
}
