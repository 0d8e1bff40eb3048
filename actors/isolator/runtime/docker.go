// Package runtime holds the docker/runtime isolator: the image's runtime
// configuration (entrypoint, cmd, env, working dir, user) applied to the
// container, as Mesos's DockerRuntimeIsolatorProcess does.
package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/berthrt/berth/actors/isolator"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// Docker is the docker/runtime isolator.
type Docker struct{ isolator.Base }

// NewDocker returns the isolator.
func NewDocker() *Docker { return &Docker{} }

// Name is the registry key.
func (*Docker) Name() string { return "docker/runtime" }

// Prepare turns the image config into launch info:
//   - Env entries become environment variables (split at the first "=");
//   - WorkingDir becomes the working directory;
//   - User becomes the user, unless the container names one;
//   - with no command given, the command is Entrypoint + Cmd. A shell command
//     or an explicit argv replaces both (Mesos's rule).
func (*Docker) Prepare(_ context.Context, _ *typesv1.ContainerID, config *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error) {
	img := config.GetImageConfig()
	if img == nil {
		return nil, nil
	}
	info := &isolatorv1.ContainerLaunchInfo{WorkingDirectory: img.GetWorkingDir()}
	if len(img.GetEnv()) > 0 {
		info.Environment = &typesv1.Environment{}
		for _, kv := range img.GetEnv() {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("image config: malformed Env entry %q (want NAME=value): %w", kv, errdefs.ErrInvalidArgument)
			}
			info.Environment.Variables = append(info.Environment.Variables, &typesv1.Environment_Variable{Name: name, Value: value})
		}
	}
	if config.GetUser() == "" {
		info.User = img.GetUser()
	}
	cmd := config.GetCommand()
	if !cmd.GetShell() && cmd.GetValue() == "" && len(cmd.GetArguments()) == 0 {
		argv := append(append([]string{}, img.GetEntrypoint()...), img.GetCmd()...)
		if len(argv) == 0 {
			return nil, fmt.Errorf("no command given and the image has neither Entrypoint nor Cmd: %w", errdefs.ErrInvalidArgument)
		}
		info.Command = &typesv1.CommandInfo{Value: argv[0], Arguments: argv}
	}
	return info, nil
}
