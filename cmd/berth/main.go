// Command berth is the Berth container agent and its CLI.
//
//	berth execute [flags] (--command='shell command' | -- ARGV...)
//	berth agent --listen=HOST:PORT
//	berth ps|wait|kill|destroy --agent=HOST:PORT [ID...]
//	berth image ls|rm|prune
//	berth version
//
// The hidden `berth init` is the container's first process: the launcher
// re-executes this binary with it (see process/launch).
package main

import (
	"fmt"
	"os"

	"github.com/berthrt/berth/process/launch"
)

func main() {
	// The container's init must run before anything else in this binary.
	if launch.IsInit() {
		launch.Main()
	}
	os.Exit(run(os.Args[1:]))
}

const usage = `berth: a container agent (the Mesos containerizer, in Go)

Usage:
  berth execute [flags] (--command='shell command' | -- ARGV...)
                           run a command in a container and print its output
  berth agent --listen=HOST:PORT
                           run an agent that serves the agent API
  berth ps|wait|kill|destroy --agent=HOST:PORT [ID...]
                           list, wait for, signal or destroy an agent's containers
  berth image ls           list the images in the store
  berth image pull REF [--output=json]
                           pull or import an image, with progress per layer
  berth image rm REF       remove an image (its layers go at the next prune)
  berth image prune        remove images and layers no container uses
  berth version            print the version

Run 'berth COMMAND --help' for a command's flags. Every flag is also
accepted with dashes: --work-dir is --work_dir.
`

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "execute":
		return execute(args[1:])
	case "image":
		return image(args[1:])
	case "agent":
		return agentMain(args[1:])
	case "ps", "wait", "kill", "destroy":
		return containersCmd(args[0], args[1:])
	case "version", "--version":
		fmt.Println("berth", version())
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "berth: unknown command %q\n\n%s", args[0], usage)
	return 2
}
