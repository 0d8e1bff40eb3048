package appc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/berthrt/berth/process/errdefs"
)

// DefaultDiscoveryPrefix is Mesos's --appc_simple_discovery_uri_prefix.
const DefaultDiscoveryPrefix = "http://"

// SimpleDiscoveryURL renders appc simple discovery's template
// {prefix}{name}-{version}-{os}-{arch}.aci for an image request: version
// "latest" when the request gives none, os and arch the host's when it
// gives none. Label values are path-escaped, so a value cannot add path
// segments. The prefix must be an http://, https:// or file:// URL prefix.
func SimpleDiscoveryURL(prefix string, r Request) (string, error) {
	if r.Name == "" || !ValidName(r.Name) {
		return "", fmt.Errorf("appc simple discovery: %q is not an image name: %w", r.Name, errdefs.ErrInvalidArgument)
	}
	if _, err := prefixScheme(prefix); err != nil {
		return "", err
	}
	r = r.withPlatform()
	version := r.Labels[LabelVersion]
	if version == "" {
		version = "latest"
	}
	return prefix + r.Name + "-" + url.PathEscape(version) + "-" + url.PathEscape(r.Labels[LabelOS]) + "-" + url.PathEscape(r.Labels[LabelArch]) + ".aci", nil
}

// prefixScheme returns the scheme of a discovery prefix.
func prefixScheme(prefix string) (string, error) {
	scheme, _, ok := strings.Cut(prefix, "://")
	if ok && (scheme == "http" || scheme == "https" || scheme == "file") {
		return scheme, nil
	}
	return "", fmt.Errorf("appc simple discovery prefix %q: want http://, https:// or file:// (for example http://127.0.0.1:8080/images/): %w", prefix, errdefs.ErrInvalidArgument)
}

// isLoopback reports whether host (no port) is a loopback address or
// "localhost".
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkURL enforces the transport policy: https anywhere, http only to a
// loopback host (nothing fetched over plain HTTP from the network enters
// the store unverified), file for local paths.
func checkURL(u *url.URL) error {
	switch u.Scheme {
	case "https", "file":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: plain HTTP is only allowed to loopback hosts; use an https:// --appc_simple_discovery_uri_prefix: %w", u.Redacted(), errdefs.ErrFailedPrecondition)
	}
	return fmt.Errorf("%s: unsupported scheme %q: %w", u.Redacted(), u.Scheme, errdefs.ErrInvalidArgument)
}

// newHTTPClient returns the client discovery fetches with: the redirect
// targets obey the same policy as the first URL.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("too many redirects: %w", errdefs.ErrInvalidArgument)
			}
			return checkURL(req.URL)
		},
	}
}

// open starts reading the ACI at rawURL. A missing image is
// errdefs.ErrNotFound; an unreachable or failing server
// errdefs.ErrUnavailable.
func open(ctx context.Context, client *http.Client, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("appc: image URL %q: %v: %w", rawURL, err, errdefs.ErrInvalidArgument)
	}
	if err := checkURL(u); err != nil {
		return nil, fmt.Errorf("appc: %w", err)
	}
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("appc: no image at %s: %w", u.Path, errdefs.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("appc: %w", err)
		}
		return f, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("appc: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) || errors.Is(err, errdefs.ErrInvalidArgument) {
			return nil, fmt.Errorf("appc: fetch %s: %w", u.Redacted(), err)
		}
		return nil, fmt.Errorf("appc: fetch %s: %v: %w", u.Redacted(), err, errdefs.ErrUnavailable)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, nil
	case http.StatusNotFound, http.StatusGone:
		_ = resp.Body.Close()
		return nil, fmt.Errorf("appc: no image at %s (%s): %w", u.Redacted(), resp.Status, errdefs.ErrNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		_ = resp.Body.Close()
		return nil, fmt.Errorf("appc: fetch %s: %s: %w", u.Redacted(), resp.Status, errdefs.ErrPermissionDenied)
	}
	_ = resp.Body.Close()
	return nil, fmt.Errorf("appc: fetch %s: %s: %w", u.Redacted(), resp.Status, errdefs.ErrUnavailable)
}
