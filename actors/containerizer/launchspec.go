package containerizer

import (
	"fmt"
	"path/filepath"
	"sort"

	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// DefaultPath is the PATH a container gets when nothing sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mergeLaunchInfos turns the container's config and the isolators' launch
// infos (in isolator order) into the LaunchSpec its init applies. It does no
// I/O. The rules are Mesos's:
//   - at most one isolator sets the command, the working directory, the user
//     or the hostname; two that disagree are an error;
//   - environment, low to high: isolators in order, then the command's own;
//     PATH defaults to DefaultPath;
//   - mounts, devices, masked and read-only paths concatenate in order;
//     namespaces are a set;
//   - the command: an isolator's, else the config's (shell → /bin/sh -c);
//   - the container's own working_dir and user win over the isolators'.
func mergeLaunchInfos(id *typesv1.ContainerID, config *typesv1.ContainerConfig, runtimeDir string, infos []*isolatorv1.ContainerLaunchInfo) (*launcherv1.LaunchSpec, error) {
	spec := &launcherv1.LaunchSpec{
		ContainerId: id.GetValue(),
		Rootfs:      config.GetRootfs(),
		RuntimeDir:  runtimeDir,
		User:        config.GetUser(),
	}
	var command *typesv1.CommandInfo
	var env []*typesv1.Environment_Variable
	namespaces := map[isolatorv1.Namespace]bool{}
	setOnce := func(field, cur, next string) (string, error) {
		if next == "" || next == cur {
			return cur, nil
		}
		if cur != "" {
			return "", fmt.Errorf("two isolators set the %s (%q and %q): %w", field, cur, next, errdefs.ErrFailedPrecondition)
		}
		return next, nil
	}
	userFromIsolator := ""
	for _, info := range infos {
		if info == nil {
			continue
		}
		if info.GetRootfs() != "" {
			return nil, fmt.Errorf("an isolator set the rootfs; only the provisioner may: %w", errdefs.ErrFailedPrecondition)
		}
		var err error
		if spec.WorkingDir, err = setOnce("working directory", spec.WorkingDir, info.GetWorkingDirectory()); err != nil {
			return nil, err
		}
		if userFromIsolator, err = setOnce("user", userFromIsolator, info.GetUser()); err != nil {
			return nil, err
		}
		if spec.Hostname, err = setOnce("hostname", spec.Hostname, info.GetHostname()); err != nil {
			return nil, err
		}
		if info.GetCommand() != nil {
			if command != nil {
				return nil, fmt.Errorf("two isolators set the command: %w", errdefs.ErrFailedPrecondition)
			}
			command = info.GetCommand()
		}
		env = append(env, info.GetEnvironment().GetVariables()...)
		spec.Mounts = append(spec.Mounts, info.GetMounts()...)
		spec.Devices = append(spec.Devices, info.GetDevices()...)
		spec.MaskedPaths = append(spec.MaskedPaths, info.GetMaskedPaths()...)
		spec.ReadonlyPaths = append(spec.ReadonlyPaths, info.GetReadonlyPaths()...)
		for _, ns := range info.GetCloneNamespaces() {
			namespaces[ns] = true
		}
		spec.NoNewPrivileges = spec.NoNewPrivileges || info.GetNoNewPrivileges()
	}
	if spec.User == "" {
		spec.User = userFromIsolator
	}
	if wd := config.GetContainerInfo().GetWorkingDir(); wd != "" {
		if !filepath.IsAbs(wd) {
			return nil, fmt.Errorf("working directory %q must be absolute: %w", wd, errdefs.ErrInvalidArgument)
		}
		spec.WorkingDir = wd
	}
	if command == nil {
		command = config.GetCommand()
	}
	argv, err := commandArgv(command)
	if err != nil {
		return nil, err
	}
	spec.Args = argv
	env = append(env, config.GetCommand().GetEnvironment().GetVariables()...)
	spec.Env = mergeEnv(env)
	if spec.Rootfs != "" && !filepath.IsAbs(spec.Rootfs) {
		return nil, fmt.Errorf("rootfs %q is not absolute: %w", spec.Rootfs, errdefs.ErrInvalidArgument)
	}
	if spec.Rootfs != "" && !namespaces[isolatorv1.Namespace_NAMESPACE_MOUNT] {
		return nil, fmt.Errorf("a rootfs needs a mount namespace: add filesystem/linux to the isolation: %w", errdefs.ErrFailedPrecondition)
	}
	if spec.Hostname != "" && !namespaces[isolatorv1.Namespace_NAMESPACE_UTS] {
		return nil, fmt.Errorf("a hostname needs a UTS namespace: add namespaces/uts to the isolation: %w", errdefs.ErrFailedPrecondition)
	}
	for ns := range namespaces {
		spec.Namespaces = append(spec.Namespaces, ns)
	}
	sort.Slice(spec.Namespaces, func(i, j int) bool { return spec.Namespaces[i] < spec.Namespaces[j] })
	return spec, nil
}

// commandArgv is the argv of a command: a shell command runs under /bin/sh -c;
// otherwise the arguments (argv[0] included), or the value alone.
func commandArgv(cmd *typesv1.CommandInfo) ([]string, error) {
	switch {
	case cmd.GetShell():
		if cmd.GetValue() == "" {
			return nil, fmt.Errorf("empty shell command: %w", errdefs.ErrInvalidArgument)
		}
		return []string{"/bin/sh", "-c", cmd.GetValue()}, nil
	case len(cmd.GetArguments()) > 0:
		argv := append([]string{}, cmd.GetArguments()...)
		if cmd.GetValue() != "" {
			argv[0] = cmd.GetValue()
		}
		return argv, nil
	case cmd.GetValue() != "":
		return []string{cmd.GetValue()}, nil
	}
	return nil, fmt.Errorf("no command to run: give one or use an image with an Entrypoint or Cmd: %w", errdefs.ErrInvalidArgument)
}

// mergeEnv keeps the last value of each name, in first-seen order, and
// defaults PATH.
func mergeEnv(vars []*typesv1.Environment_Variable) []string {
	index := map[string]int{}
	var names, values []string
	for _, v := range vars {
		if i, ok := index[v.GetName()]; ok {
			values[i] = v.GetValue()
			continue
		}
		index[v.GetName()] = len(names)
		names = append(names, v.GetName())
		values = append(values, v.GetValue())
	}
	if _, ok := index["PATH"]; !ok {
		names = append([]string{"PATH"}, names...)
		values = append([]string{DefaultPath}, values...)
	}
	out := make([]string, len(names))
	for i := range names {
		out[i] = names[i] + "=" + values[i]
	}
	return out
}
