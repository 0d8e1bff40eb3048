package containerizer

import (
	"context"
	"reflect"
	"testing"

	"github.com/berthrt/berth/actors/isolator/filesystem"
	"github.com/berthrt/berth/actors/isolator/namespaces"
	"github.com/berthrt/berth/actors/isolator/runtime"
	isolatorv1 "github.com/berthrt/berth/messages/isolator/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

func vars(kv ...string) *typesv1.Environment {
	e := &typesv1.Environment{}
	for i := 0; i < len(kv); i += 2 {
		e.Variables = append(e.Variables, &typesv1.Environment_Variable{Name: kv[i], Value: kv[i+1]})
	}
	return e
}

// TestMergeWithRealIsolators runs the real default isolators' Prepare and
// checks the merged spec: the image's entrypoint and cmd, env precedence,
// working dir and user from the image, every namespace, and the mount plan.
func TestMergeWithRealIsolators(t *testing.T) {
	t.Parallel()
	id := &typesv1.ContainerID{Value: "c1"}
	config := &typesv1.ContainerConfig{
		Command:   &typesv1.CommandInfo{Environment: vars("A", "from-command", "B", "b")},
		Directory: "/var/lib/berth/sandboxes/c1",
		Rootfs:    "/var/lib/berth/provisioner/containers/c1/backends/copy/rootfses/u",
		ImageConfig: &typesv1.ImageConfig{
			Entrypoint: []string{"/bin/entry"}, Cmd: []string{"arg"},
			Env: []string{"PATH=/custom/bin", "A=from-image"}, WorkingDir: "/work", User: "1000:1000",
		},
	}
	fs, err := filesystem.NewLinux("")
	if err != nil {
		t.Fatal(err)
	}
	var infos []*isolatorv1.ContainerLaunchInfo
	for _, iso := range []interface {
		Prepare(context.Context, *typesv1.ContainerID, *typesv1.ContainerConfig) (*isolatorv1.ContainerLaunchInfo, error)
	}{fs, runtime.NewDocker(), namespaces.IPC{}, namespaces.PID{}, namespaces.UTS{}} {
		info, err := iso.Prepare(context.Background(), id, config)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	spec, err := mergeLaunchInfos(id, config, "/run/berth/containers/c1", infos)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/entry", "arg"}; !reflect.DeepEqual(spec.GetArgs(), want) {
		t.Errorf("args %v want %v", spec.GetArgs(), want)
	}
	wantEnv := []string{"BERTH_SANDBOX=/mnt/berth/sandbox", "PATH=/custom/bin", "A=from-command", "B=b"}
	if !reflect.DeepEqual(spec.GetEnv(), wantEnv) {
		t.Errorf("env %v want %v", spec.GetEnv(), wantEnv)
	}
	if spec.GetWorkingDir() != "/work" || spec.GetUser() != "1000:1000" || spec.GetHostname() != "c1" {
		t.Errorf("workdir %q user %q hostname %q", spec.GetWorkingDir(), spec.GetUser(), spec.GetHostname())
	}
	wantNS := []isolatorv1.Namespace{isolatorv1.Namespace_NAMESPACE_MOUNT, isolatorv1.Namespace_NAMESPACE_PID, isolatorv1.Namespace_NAMESPACE_UTS, isolatorv1.Namespace_NAMESPACE_IPC}
	if !reflect.DeepEqual(spec.GetNamespaces(), wantNS) {
		t.Errorf("namespaces %v want %v", spec.GetNamespaces(), wantNS)
	}
	var targets []string
	for _, m := range spec.GetMounts() {
		targets = append(targets, m.GetTarget())
	}
	wantTargets := []string{"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/mnt/berth/sandbox", "/dev/mqueue"}
	if !reflect.DeepEqual(targets, wantTargets) {
		t.Errorf("mount targets %v want %v", targets, wantTargets)
	}
	if spec.GetRuntimeDir() != "/run/berth/containers/c1" || len(spec.GetDevices()) != 6 || len(spec.GetMaskedPaths()) == 0 {
		t.Errorf("spec %v", spec)
	}
}

func TestMergeCommandRules(t *testing.T) {
	t.Parallel()
	id := &typesv1.ContainerID{Value: "c"}
	cases := []struct {
		name string
		cmd  *typesv1.CommandInfo
		want []string
	}{
		{"shell", &typesv1.CommandInfo{Shell: true, Value: "echo hi"}, []string{"/bin/sh", "-c", "echo hi"}},
		{"argv", &typesv1.CommandInfo{Arguments: []string{"ls", "-l"}}, []string{"ls", "-l"}},
		{"value overrides argv0", &typesv1.CommandInfo{Value: "/bin/ls", Arguments: []string{"ls", "-l"}}, []string{"/bin/ls", "-l"}},
		{"value alone", &typesv1.CommandInfo{Value: "true"}, []string{"true"}},
	}
	for _, tc := range cases {
		spec, err := mergeLaunchInfos(id, &typesv1.ContainerConfig{Command: tc.cmd}, "/r", nil)
		if err != nil || !reflect.DeepEqual(spec.GetArgs(), tc.want) {
			t.Errorf("%s: %v %v", tc.name, spec.GetArgs(), err)
		}
	}
	if _, err := mergeLaunchInfos(id, &typesv1.ContainerConfig{}, "/r", nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no command: %v", err)
	}
	if _, err := mergeLaunchInfos(id, &typesv1.ContainerConfig{Command: &typesv1.CommandInfo{Shell: true}}, "/r", nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("empty shell command: %v", err)
	}
}

func TestMergeConflicts(t *testing.T) {
	t.Parallel()
	id := &typesv1.ContainerID{Value: "c"}
	config := &typesv1.ContainerConfig{Command: &typesv1.CommandInfo{Value: "true"}}
	cases := []struct {
		name  string
		infos []*isolatorv1.ContainerLaunchInfo
	}{
		{"two working dirs", []*isolatorv1.ContainerLaunchInfo{{WorkingDirectory: "/a"}, {WorkingDirectory: "/b"}}},
		{"two users", []*isolatorv1.ContainerLaunchInfo{{User: "a"}, {User: "b"}}},
		{"two commands", []*isolatorv1.ContainerLaunchInfo{{Command: &typesv1.CommandInfo{Value: "a"}}, {Command: &typesv1.CommandInfo{Value: "b"}}}},
		{"isolator sets rootfs", []*isolatorv1.ContainerLaunchInfo{{Rootfs: "/x"}}},
		{"hostname without uts", []*isolatorv1.ContainerLaunchInfo{{Hostname: "h"}}},
	}
	for _, tc := range cases {
		if _, err := mergeLaunchInfos(id, config, "/r", tc.infos); !errdefs.IsFailedPrecondition(err) {
			t.Errorf("%s: want failed precondition, got %v", tc.name, err)
		}
	}
	rooted := &typesv1.ContainerConfig{Command: config.GetCommand(), Rootfs: "/x"}
	if _, err := mergeLaunchInfos(id, rooted, "/r", nil); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("rootfs without mount ns: %v", err)
	}
	// The same value from two isolators is not a conflict.
	if _, err := mergeLaunchInfos(id, config, "/r", []*isolatorv1.ContainerLaunchInfo{{WorkingDirectory: "/a"}, {WorkingDirectory: "/a"}}); err != nil {
		t.Errorf("same working dir twice: %v", err)
	}
}
