// Command berth-bench is Berth's performance harness, what `task bench` runs.
//
//	berth-bench [run] [flags]          measure, write bench/results/*.json and docs/performance.md
//	berth-bench compare OLD.json NEW.json
//
// A run checks the peers (runc, crun, skopeo, umoci, docker-registry; as root
// outside CI it installs the missing ones with apt-get), builds bin/berth and
// the built-in image, makes an OCI bundle of the same rootfs with umoci, and
// then measures, alternating the systems run by run so that drift cancels:
//
//   - launch: request to exit of /bin/true in a fresh container, for the
//     one-shot `berth execute` (embedded agent), a running `berth agent`
//     driven from this process over its remote API (so no client start-up is
//     counted), the one-shot `berth execute --agent`, `runc run` and
//     `crun run`; median, p90, p99 and the ratios to runc and crun.
//   - throughput: N containers launched at once (N = 1, 10, 100) through the
//     agent, by runc and by crun; containers per second and the ratios.
//   - gobench: every `go test -bench` of the repository (the suites of the
//     Taskfile and any other Benchmark function found), parsed generically:
//     each "value unit" pair, b.ReportMetric units included.
//
// crun 1.8 refuses this host's hybrid cgroup layout; it is run as
// `crun --cgroup-manager=disabled run` from a helper process (the hidden
// `peer-server` subcommand) in a private mount namespace without the
// cgroup2 mount. The host's mounts are never changed.
//
// Measurements never run in CI and assert nothing; the pure parts (parser,
// statistics, writers) are in internal/report and internal/stats and are
// unit-tested.
package main
