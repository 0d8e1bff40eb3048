package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berthrt/berth/process/errdefs"
)

// sourceRegistry is the Source of images pulled from a registry.
const sourceRegistry = "registry"

// dockerHubRegistry is where names on docker.io are pulled from when
// Options.Registry is not a host of its own.
const dockerHubRegistry = "index.docker.io"

// parseRegistry validates Options.Registry: HOST[:PORT], or a URL
// https://HOST[:PORT] or http://HOST[:PORT]. Plain HTTP is allowed for
// loopback hosts only. It returns HOST[:PORT].
func parseRegistry(v string) (string, error) {
	host := strings.TrimSuffix(strings.TrimSpace(v), "/")
	scheme := ""
	if i := strings.Index(host, "://"); i >= 0 {
		scheme, host = strings.ToLower(host[:i]), host[i+3:]
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("docker registry %q: %s: %w", v, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case host == "" || strings.ContainsAny(host, "/?#@ "):
		return bad("want HOST[:PORT] or a URL without a path")
	case scheme != "" && scheme != "http" && scheme != "https":
		return bad("the scheme must be http or https")
	case scheme == "http" && !isLoopback(host):
		return bad("plain http is allowed for loopback registries only")
	}
	if _, err := name.NewRegistry(host); err != nil {
		return bad(err.Error())
	}
	return host, nil
}

// isLoopback reports whether HOST[:PORT] is localhost or a loopback
// address.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pullRepository is the registry repository n is pulled from: its own
// registry, or Options.Registry for names on docker.io.
func (s *Store) pullRepository(n named) (name.Repository, error) {
	host := n.domain
	if host == defaultDomain {
		host = dockerHubRegistry
		if s.registry != "" {
			host = s.registry
		}
	}
	var opts []name.Option
	if isLoopback(host) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(host+"/"+n.path, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("image %s: %v: %w", n, err, errdefs.ErrInvalidArgument)
	}
	return repo, nil
}

// registryFiles serves a registry image to readOCIManifest: the manifests
// already fetched from memory, every other blob from the registry's blob
// endpoint. Blobs are not verified here; readBlob and extract verify each
// one against its descriptor while reading.
type registryFiles struct {
	ctx       context.Context
	client    *http.Client
	repo      name.Repository
	manifests map[string][]byte
}

func (r *registryFiles) where() string { return "registry " + r.repo.Name() }
func (r *registryFiles) close() error  { return nil }

func (r *registryFiles) open(p string) (io.ReadCloser, int64, error) {
	d := digestOfName(p)
	if d == "" {
		return nil, 0, fmt.Errorf("%s: no blob %s: %w", r.where(), p, fs.ErrNotExist)
	}
	if m, ok := r.manifests[d]; ok {
		return io.NopCloser(bytes.NewReader(m)), int64(len(m)), nil
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", r.repo.Scheme(), r.repo.RegistryStr(), r.repo.RepositoryStr(), d)
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: blob %s: %v: %w", r.where(), d, err, errdefs.ErrInternal)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, classifyRegistry(err, fmt.Sprintf("%s: blob %s", r.where(), d))
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		_ = resp.Body.Close()
		return nil, 0, classifyRegistry(err, fmt.Sprintf("%s: blob %s", r.where(), d))
	}
	return resp.Body, resp.ContentLength, nil
}

// resolveRegistry reads the manifest (following an index to
// linux/runtime.GOARCH) and the config of a name from its registry; the
// layers are fetched when they are extracted, those cached by diff id not
// at all.
func (s *Store) resolveRegistry(ctx context.Context, req request) (resolved, error) {
	n := *req.want
	repo, err := s.pullRepository(n)
	if err != nil {
		return resolved{}, err
	}
	where := fmt.Sprintf("image %s (registry %s)", n, repo.RegistryStr())
	var ref name.Reference = repo.Tag(n.tag)
	if n.digest != "" {
		if err := checkDigest(n.digest, "image"); err != nil {
			return resolved{}, fmt.Errorf("%s: %w", where, err)
		}
		ref = repo.Digest(n.digest)
	}
	auth, err := s.creds.authFor(ctx, repo.RegistryStr())
	if err != nil {
		return resolved{}, fmt.Errorf("%s: %w", where, err)
	}
	opts := []remote.Option{
		remote.WithContext(ctx), remote.WithAuth(auth), remote.WithUserAgent("berth"),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return resolved{}, classifyRegistry(err, where)
	}
	raw, mt, dgst := desc.Manifest, string(desc.MediaType), desc.Digest.String()
	if n.digest != "" && sha256Digest(raw) != n.digest {
		return resolved{}, fmt.Errorf("%s: the registry served a manifest with digest %s: %w", where, sha256Digest(raw), errdefs.ErrInvalidArgument)
	}
	for depth := 0; mt == mediaTypeOCIIndex || mt == mediaTypeDockerList; depth++ {
		if depth >= maxIndexDepth {
			return resolved{}, fmt.Errorf("%s: image indexes nested more than %d deep: %w", where, maxIndexDepth, errdefs.ErrInvalidArgument)
		}
		var idx ociIndex
		if err := json.Unmarshal(raw, &idx); err != nil {
			return resolved{}, fmt.Errorf("%s: malformed image index %s: %v: %w", where, dgst, err, errdefs.ErrInvalidArgument)
		}
		m, ok := pickPlatform(idx.Manifests)
		if !ok {
			return resolved{}, fmt.Errorf("%s: image index %s has no image for linux/%s: %w", where, dgst, runtime.GOARCH, errdefs.ErrNotFound)
		}
		if err := checkDigest(m.Digest, "manifest"); err != nil {
			return resolved{}, fmt.Errorf("%s: %w", where, err)
		}
		d, err := remote.Get(repo.Digest(m.Digest), opts...)
		if err != nil {
			return resolved{}, classifyRegistry(err, where)
		}
		if got := sha256Digest(d.Manifest); got != m.Digest {
			return resolved{}, fmt.Errorf("%s: manifest %s has digest %s: %w", where, m.Digest, got, errdefs.ErrInvalidArgument)
		}
		raw, mt, dgst = d.Manifest, m.MediaType, m.Digest
		if mt == "" {
			mt = string(d.MediaType)
		}
	}
	if mt != mediaTypeOCIManifest && mt != mediaTypeDockerManifest {
		return resolved{}, fmt.Errorf("%s: manifest %s has unsupported media type %q: %w", where, dgst, mt, errdefs.ErrInvalidArgument)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, remote.DefaultTransport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return resolved{}, classifyRegistry(err, where)
	}
	src := &registryFiles{ctx: ctx, client: &http.Client{Transport: rt}, repo: repo, manifests: map[string][]byte{dgst: raw}}
	p, err := readOCIManifest(src, descriptor{MediaType: mt, Digest: dgst, Size: int64(len(raw))})
	if err != nil {
		return resolved{}, err
	}
	for i := range p.layers {
		p.layers[i].remote = true
	}
	return resolved{plan: p, reference: req.reference, source: sourceRegistry, close: func() {}}, nil
}

// classifyRegistry turns a registry or transport error into the store's
// classes: unknown repositories, tags and blobs are ErrNotFound, refused
// credentials ErrPermissionDenied, anything else (the registry cannot be
// reached, answers 5xx) ErrUnavailable.
func classifyRegistry(err error, where string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", where, err)
	}
	class := errdefs.ErrUnavailable
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			class = errdefs.ErrNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			class = errdefs.ErrPermissionDenied
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				class = errdefs.ErrNotFound
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				class = errdefs.ErrPermissionDenied
			}
		}
	}
	return fmt.Errorf("%s: %v: %w", where, err, class)
}
