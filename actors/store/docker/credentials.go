package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berthrt/berth/process/errdefs"
)

// defaultHelperTimeout bounds one run of a credential helper.
const defaultHelperTimeout = 30 * time.Second

// helperPrefix begins the name of every Docker credential helper program.
const helperPrefix = "docker-credential-"

// dockerHubServerURL is the server URL Docker hands credential helpers and
// keys config.json entries with for Docker Hub.
const dockerHubServerURL = "https://index.docker.io/v1/"

// helperName is what may follow helperPrefix: a name, never a path.
var helperName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// credentials are the registry logins of a Docker config.json (Mesos's
// --docker_config), looked up as Docker does: the credential helper that
// credHelpers names for the registry, else the credsStore helper, else the
// registry's auths entry ({"auth": base64("user:password")}, or "username"
// and "password", or "identitytoken"), else anonymous.
type credentials struct {
	// path is the config file, for messages.
	path string
	// auths are the logins written in the file, by registry host.
	auths map[string]authn.AuthConfig
	// helpers are credHelpers by registry host; store is credsStore.
	helpers map[string]string
	store   string
	// searchPath is where helper programs are looked for ("" = $PATH).
	searchPath string
	timeout    time.Duration
}

// loadCredentials reads a Docker config.json; "" means none.
func loadCredentials(path, searchPath string, timeout time.Duration) (credentials, error) {
	if timeout <= 0 {
		timeout = defaultHelperTimeout
	}
	c := credentials{path: path, auths: map[string]authn.AuthConfig{}, helpers: map[string]string{}, searchPath: searchPath, timeout: timeout}
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("--docker_config %s: %w: %w", path, errdefs.ErrNotFound, err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
		CredsStore  string            `json:"credsStore"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return c, fmt.Errorf("--docker_config %s: not a Docker config.json: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	for host, a := range cfg.Auths {
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return c, fmt.Errorf("--docker_config %s: the auth of %s is not base64: %w", path, host, errdefs.ErrInvalidArgument)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return c, fmt.Errorf("--docker_config %s: the auth of %s is not user:password: %w", path, host, errdefs.ErrInvalidArgument)
			}
			ac.Username, ac.Password = user, pass
		}
		c.auths[registryKey(host)] = ac
	}
	for host, h := range cfg.CredHelpers {
		if !helperName.MatchString(h) {
			return c, fmt.Errorf("--docker_config %s: credHelpers of %s: %q is not a credential helper name: %w", path, host, h, errdefs.ErrInvalidArgument)
		}
		c.helpers[registryKey(host)] = h
	}
	if cfg.CredsStore != "" && !helperName.MatchString(cfg.CredsStore) {
		return c, fmt.Errorf("--docker_config %s: credsStore %q is not a credential helper name: %w", path, cfg.CredsStore, errdefs.ErrInvalidArgument)
	}
	c.store = cfg.CredsStore
	return c, nil
}

// registryKey reduces a config.json key ("https://index.docker.io/v1/",
// "127.0.0.1:5000") to the registry host it names.
func registryKey(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	if key == "docker.io" || key == "registry-1.docker.io" {
		return "index.docker.io"
	}
	return key
}

// authFor returns the login for a registry host: from its credential
// helper, the credentials store, its auths entry, or anonymous access.
func (c credentials) authFor(ctx context.Context, host string) (authn.Authenticator, error) {
	key := registryKey(host)
	if h, ok := c.helpers[key]; ok {
		return c.runHelper(ctx, h, "credHelpers", key)
	}
	if c.store != "" {
		return c.runHelper(ctx, c.store, "credsStore", key)
	}
	if ac, ok := c.auths[key]; ok {
		return authn.FromConfig(ac), nil
	}
	return authn.Anonymous, nil
}

// runHelper runs `docker-credential-<name> get` with the registry's server
// URL on stdin and reads the login it prints (Docker's credential helper
// protocol): {"ServerURL", "Username", "Secret"}, Username "<token>" for an
// identity token. A helper that answers "credentials not found" means
// anonymous access. A helper that is not installed is
// ErrFailedPrecondition; one that fails, prints something else or does not
// answer in time is ErrUnavailable (ErrDeadlineExceeded for the timeout).
func (c credentials) runHelper(ctx context.Context, name, field, host string) (authn.Authenticator, error) {
	prog := helperPrefix + name
	where := fmt.Sprintf("registry %s: credential helper %s (%s of --docker_config %s)", host, prog, field, c.path)
	bin, err := c.findHelper(prog)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", where, err, errdefs.ErrFailedPrecondition)
	}
	serverURL := host
	if host == dockerHubRegistry {
		serverURL = dockerHubServerURL
	}
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, bin, "get")
	cmd.Stdin = strings.NewReader(serverURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A helper's children (a keychain daemon) must not keep the pull
	// waiting for their output once the helper has gone.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", where, ctx.Err())
	case hctx.Err() != nil:
		return nil, fmt.Errorf("%s: no answer within %v: %w", where, c.timeout, errdefs.ErrDeadlineExceeded)
	case err != nil:
		out := strings.TrimSpace(stdout.String())
		// The protocol's answer for "no login stored for this server".
		if strings.Contains(out, "credentials not found") {
			return authn.Anonymous, nil
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %v: %w", where, err, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("%s: %v: %s: %w", where, err, firstLine(out, stderr.String()), errdefs.ErrUnavailable)
	}
	var resp struct {
		ServerURL, Username, Secret string
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("%s: its answer is not JSON: %v: %w", where, err, errdefs.ErrUnavailable)
	}
	switch {
	case resp.Username == "" && resp.Secret == "":
		return authn.Anonymous, nil
	case resp.Username == "<token>":
		return authn.FromConfig(authn.AuthConfig{IdentityToken: resp.Secret}), nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: resp.Username, Password: resp.Secret}), nil
}

// findHelper looks for an executable prog in the search path.
func (c credentials) findHelper(prog string) (string, error) {
	path := c.searchPath
	if path == "" {
		path = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("not installed: no executable %s in %s", prog, path)
}

// firstLine is the first non-empty line of the outputs, for messages.
func firstLine(outs ...string) string {
	for _, o := range outs {
		if line, _, _ := strings.Cut(strings.TrimSpace(o), "\n"); line != "" {
			return line
		}
	}
	return "no output"
}
