package agent

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/store/appc"
	"github.com/berthrt/berth/process/errdefs"
)

// DefaultImageProviders are the image stores an agent has unless
// --image_providers says otherwise (Mesos's flag; tokens are case-blind).
const DefaultImageProviders = "docker,appc"

// providers is --image_providers parsed.
type providers struct{ docker, appc bool }

// parseProviders reads --image_providers: "docker" and "appc", comma
// separated, in any case (Mesos writes APPC,DOCKER).
func parseProviders(list string) (providers, error) {
	var p providers
	for _, tok := range strings.Split(list, ",") {
		switch strings.ToLower(strings.TrimSpace(tok)) {
		case "docker":
			p.docker = true
		case "appc":
			p.appc = true
		case "":
		default:
			return p, fmt.Errorf("--image_providers: unknown image provider %q (known: docker, appc): %w", tok, errdefs.ErrInvalidArgument)
		}
	}
	return p, nil
}

// AppcEnabled reports whether appc is among the options' image providers.
func (o Options) AppcEnabled() (bool, error) {
	o.setDefaults()
	p, err := parseProviders(o.ImageProviders)
	return p.appc, err
}

// NewAppcStore builds the appc store of an agent's options
// (--appc_store_dir, --appc_simple_discovery_uri_prefix; "none" turns
// discovery off).
func NewAppcStore(o Options, logger *zap.Logger) (*appc.Store, error) {
	o.setDefaults()
	prefix := o.AppcDiscoveryPrefix
	if prefix == "none" {
		prefix = ""
	}
	return appc.New(appc.Options{Dir: o.AppcStoreDir, DiscoveryPrefix: prefix, Logger: logger})
}

// appcDefaults fills in the appc options.
func (o *Options) appcDefaults() {
	if o.AppcStoreDir == "" {
		o.AppcStoreDir = filepath.Join(o.WorkDir, "store", "appc")
	}
	if o.AppcDiscoveryPrefix == "" {
		o.AppcDiscoveryPrefix = appc.DefaultDiscoveryPrefix
	}
	if o.ImageProviders == "" {
		o.ImageProviders = DefaultImageProviders
	}
}
