package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berthrt/berth/process/builtin"
	"github.com/berthrt/berth/process/checkpoint"
	"github.com/berthrt/berth/process/errdefs"
)

// buildBerth builds ./cmd/berth and ./cmd/berth-init into dir, side by
// side as installed, so that agents run containers' inits from berth-init.
func buildBerth(ctx context.Context, root, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/berth", "./cmd/berth-init")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/berth ./cmd/berth-init: %v\n%s", err, out)
	}
	return filepath.Join(dir, "berth"), nil
}

// makeBundle builds the built-in image (the one `berth execute` runs by
// default; the build is reproducible, so it is the same rootfs Berth
// provisions) as an OCI layout, unpacks it with umoci into an OCI bundle,
// and replaces umoci's config.json with runc's default spec (umoci's has a
// devices rule crun rejects on this host) minus the network namespace
// (Berth gives containers none by default), running /bin/true without a
// terminal.
func makeBundle(ctx context.Context, dir string) (bundle, manifest string, err error) {
	layout := filepath.Join(dir, "builtin-layout")
	if _, err := builtin.Build(ctx, layout); err != nil {
		return "", "", err
	}
	if manifest, err = builtin.ManifestDigest(layout); err != nil {
		return "", "", err
	}
	bundle = filepath.Join(dir, "bundle")
	if out, err := exec.CommandContext(ctx, "umoci", "unpack", "--image", layout+":latest", bundle).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("umoci unpack: %v\n%s: %w", err, out, errdefs.ErrInternal)
	}
	spec := filepath.Join(dir, "spec")
	if err := os.Mkdir(spec, 0o755); err != nil {
		return "", "", err
	}
	if out, err := exec.CommandContext(ctx, "runc", "spec", "--bundle", spec).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("runc spec: %v\n%s: %w", err, out, errdefs.ErrInternal)
	}
	b, err := os.ReadFile(filepath.Join(spec, "config.json"))
	if err != nil {
		return "", "", err
	}
	out, err := benchSpec(b)
	if err != nil {
		return "", "", err
	}
	if err := checkpoint.WriteFile(filepath.Join(bundle, "config.json"), out, 0o644); err != nil {
		return "", "", err
	}
	return bundle, manifest, nil
}

// benchSpec edits a `runc spec` config.json: args ["/bin/true"], no
// terminal, no network namespace. Everything else stays runc's default.
func benchSpec(config []byte) ([]byte, error) {
	var spec map[string]any
	if err := json.Unmarshal(config, &spec); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	proc, ok := spec["process"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("runc spec without process: %w", errdefs.ErrInvalidArgument)
	}
	proc["terminal"] = false
	proc["args"] = []any{"/bin/true"}
	linux, ok := spec["linux"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("runc spec without linux: %w", errdefs.ErrInvalidArgument)
	}
	nss, _ := linux["namespaces"].([]any)
	kept := []any{}
	for _, ns := range nss {
		if m, ok := ns.(map[string]any); ok && m["type"] == "network" {
			continue
		}
		kept = append(kept, ns)
	}
	linux["namespaces"] = kept
	return json.MarshalIndent(spec, "", "\t")
}

// storeDigest is the digest under which Berth's store in workDir holds the
// built-in image (`berth image inspect`, which takes no lock, so it works
// beside a running agent).
func storeDigest(ctx context.Context, berth, workDir string) (string, error) {
	out, err := exec.CommandContext(ctx, berth, "image", "inspect", "--work_dir="+workDir, builtin.Reference).Output()
	if err != nil {
		return "", fmt.Errorf("berth image inspect: %w", err)
	}
	var imgs []struct{ Digest string }
	if err := json.Unmarshal(out, &imgs); err != nil || len(imgs) != 1 {
		return "", fmt.Errorf("berth image inspect: unexpected output %q: %w", out, errdefs.ErrInternal)
	}
	return imgs[0].Digest, nil
}

// sameImageNote says whether Berth's stores hold the image the bundle was
// unpacked from.
func sameImageNote(ctx context.Context, berth, manifest string, workDirs ...string) string {
	for _, w := range workDirs {
		d, err := storeDigest(ctx, berth, w)
		if err != nil {
			return fmt.Sprintf("WARNING: could not check that Berth ran the bundle's image: %v", err)
		}
		if d != manifest {
			return fmt.Sprintf("WARNING: Berth's store in %s holds the built-in image as %s, the bundle was unpacked from %s: not the same rootfs", w, d, manifest)
		}
	}
	return fmt.Sprintf("Checked: Berth's stores hold the built-in image as %s, the manifest the bundle was unpacked from.", manifest)
}

// mountRunTmpfs mounts a tmpfs on dir for the per-boot state of Berth and
// the peers, and returns it and its unmount.
func mountRunTmpfs(dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", nil, err
	}
	if err := unix.Mount("berth-bench-run", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711,size=512m"); err != nil {
		return "", nil, fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	return dir, func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }, nil
}

// removeCgroupsRoot removes the (empty) cgroups root the harness's agent
// made, in every hierarchy it may be in.
func removeCgroupsRoot(root string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", root))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", root))
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}
