package docker

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berthrt/berth/process/errdefs"
)

// credentials are registry logins read from a Docker config.json
// (Mesos's --docker_config): {"auths": {"HOST[:PORT]": {"auth":
// base64("user:password")}}} or with "username" and "password" fields.
// Credential helpers (credsStore, credHelpers) are not run.
type credentials map[string]authn.AuthConfig

// loadCredentials reads a Docker config.json; "" means none.
func loadCredentials(path string) (credentials, error) {
	if path == "" {
		return credentials{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--docker_config %s: %w: %w", path, errdefs.ErrNotFound, err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("--docker_config %s: not a Docker config.json: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	creds := credentials{}
	for host, a := range cfg.Auths {
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("--docker_config %s: the auth of %s is not base64: %w", path, host, errdefs.ErrInvalidArgument)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("--docker_config %s: the auth of %s is not user:password: %w", path, host, errdefs.ErrInvalidArgument)
			}
			ac.Username, ac.Password = user, pass
		}
		creds[registryKey(host)] = ac
	}
	return creds, nil
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

// authFor returns the login for a registry host, or anonymous access.
func (c credentials) authFor(host string) authn.Authenticator {
	if ac, ok := c[registryKey(host)]; ok {
		return authn.FromConfig(ac)
	}
	return authn.Anonymous
}
