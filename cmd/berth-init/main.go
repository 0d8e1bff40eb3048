// Command berth-init is the first process of every Berth container: the
// launcher starts it in the container's new namespaces, it builds the
// container's root filesystem view, execs the command, reaps and forwards
// signals (see process/launch). It is the same init `berth init` runs, in a
// binary without the agent: it starts in about a third of the time.
//
// Install it beside the berth binary (go build -o bin/ ./cmd/berth
// ./cmd/berth-init, or `task build`); the agent finds it there and runs it
// from a sealed in-memory copy. Run by hand it only says what it is.
package main

import (
	"fmt"
	"os"

	"github.com/berthrt/berth/process/launch"
)

func main() {
	if launch.IsInit() {
		launch.Main()
	}
	fmt.Fprintln(os.Stderr, "berth-init is the init of Berth's containers; the berth agent runs it")
	os.Exit(2)
}
