package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/logging"
	"github.com/berthrt/berth/process/cgroups"
)

// normalizeFlags turns --work-dir into --work_dir so that every flag is
// accepted with dashes or underscores, as Mesos users expect. Values and
// arguments after "--" are left alone.
func normalizeFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			dashes := 1
			if strings.HasPrefix(a, "--") {
				dashes = 2
			}
			name, value, hasValue := strings.Cut(a[dashes:], "=")
			name = strings.ReplaceAll(name, "-", "_")
			a = a[:dashes] + name
			if hasValue {
				a += "=" + value
			}
		}
		out = append(out, a)
	}
	return out
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// agentFlags are the flags every command that runs an agent takes.
type agentFlags struct {
	workDir, runtimeDir, isolation, dockerStoreDir, dockerRegistry, dockerConfig, sandboxDir string
	logLevel, logFormat                                                                      string
	// image GC
	imageGCThreshold float64
	imageGCInterval  time.Duration
	imageGCExcluded  string
	// sandbox GC
	gcDelay, diskWatchInterval                        time.Duration
	gcDiskHeadroom                                    float64
	imageProviders, appcStoreDir, appcDiscoveryPrefix string
	cgroupsRoot                                       string
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.workDir, "work_dir", agent.DefaultWorkDir, "directory for images, rootfses and sandboxes")
	fs.StringVar(&f.runtimeDir, "runtime_dir", agent.DefaultRuntimeDir, "directory for checkpoints of running containers")
	fs.StringVar(&f.isolation, "isolation", agent.DefaultIsolation, "isolators, comma separated")
	fs.StringVar(&f.dockerStoreDir, "docker_store_dir", "", "docker store directory (default <work_dir>/store/docker)")
	fs.StringVar(&f.dockerConfig, "docker_config", "", "a Docker config.json with registry logins (auths)")
	fs.StringVar(&f.dockerRegistry, "docker_registry", "", "a directory of `docker save` tarballs named REPO:TAG.tar, or a registry HOST[:PORT] to pull from")
	fs.StringVar(&f.imageProviders, "image_providers", agent.DefaultImageProviders, "image stores, comma separated: docker, appc")
	fs.StringVar(&f.appcStoreDir, "appc_store_dir", "", "appc store directory (default <work_dir>/store/appc)")
	fs.StringVar(&f.appcDiscoveryPrefix, "appc_simple_discovery_uri_prefix", "http://", "URL prefix of appc simple discovery: {prefix}{name}-{version}-{os}-{arch}.aci (http:// to loopback hosts only; none: off)")
	fs.StringVar(&f.sandboxDir, "sandbox_directory", "", "the sandbox's path inside containers (default /mnt/berth/sandbox)")
	fs.StringVar(&f.cgroupsRoot, "cgroups_root", cgroups.DefaultRoot, "the cgroup below each hierarchy's root that holds the containers' cgroups (cgroups/cpu, cgroups/mem)")
	fs.StringVar(&f.logLevel, "log_level", "warn", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log_format", "console", "log format: console or json")
	fs.Float64Var(&f.imageGCThreshold, "image_gc_threshold", agent.DefaultImageGCThreshold, "prune unused images when the image store's disk is fuller than this fraction; 0 turns the automatic image GC off")
	fs.DurationVar(&f.imageGCInterval, "image_gc_interval", agent.DefaultImageGCInterval, "how often the image GC checks the disk")
	fs.StringVar(&f.imageGCExcluded, "image_gc_excluded", "", "image references the image GC never removes, comma separated")
	fs.DurationVar(&f.gcDelay, "gc_delay", agent.DefaultGCDelay, "how long a finished container's sandbox is kept on an empty disk; less as the disk fills")
	fs.Float64Var(&f.gcDiskHeadroom, "gc_disk_headroom", agent.DefaultGCDiskHeadroom, "sandboxes are kept gc_delay × max(0, 1 − gc_disk_headroom − disk use)")
	fs.DurationVar(&f.diskWatchInterval, "disk_watch_interval", agent.DefaultDiskWatchInterval, "how often finished sandboxes are checked")
}

func (f *agentFlags) options() agent.Options {
	return agent.Options{
		WorkDir: f.workDir, RuntimeDir: f.runtimeDir, Isolation: f.isolation,
		DockerStoreDir: f.dockerStoreDir, DockerRegistry: f.dockerRegistry, DockerConfig: f.dockerConfig, SandboxDirectory: f.sandboxDir,
		ImageGCThreshold: f.imageGCThreshold, ImageGCInterval: f.imageGCInterval, ImageGCExcluded: splitList(f.imageGCExcluded),
		GCDelay: f.gcDelay, GCDiskHeadroom: f.gcDiskHeadroom, DiskWatchInterval: f.diskWatchInterval,
		ImageProviders: f.imageProviders, AppcStoreDir: f.appcStoreDir, AppcDiscoveryPrefix: f.appcDiscoveryPrefix,
		CgroupsRoot: f.cgroupsRoot,
	}
}

func (f *agentFlags) logger() (*zap.Logger, error) {
	return logging.New(logging.Options{Level: f.logLevel, Format: f.logFormat})
}

// newFlagSet returns a flag set that prints its usage to stderr.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(os.Stderr)
		fmt.Fprintf(os.Stderr, "Usage: %s\n\nFlags (also with dashes: --work-dir):\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func version() string { return agent.Version }

// parseInterleaved parses flags wherever they stand among the positional
// arguments (`berth wait ID --agent=X` as well as `berth wait --agent=X ID`),
// and returns the positional ones; everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// splitList splits a comma separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
