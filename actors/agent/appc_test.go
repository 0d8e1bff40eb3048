package agent

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/berthrt/berth/process/errdefs"
)

func TestParseProviders(t *testing.T) {
	cases := []struct {
		in           string
		docker, appc bool
	}{
		{"docker,appc", true, true},
		{"APPC,DOCKER", true, true},
		{"docker", true, false},
		{" appc ", false, true},
	}
	for _, c := range cases {
		p, err := parseProviders(c.in)
		if err != nil || p.docker != c.docker || p.appc != c.appc {
			t.Errorf("%q: %+v %v", c.in, p, err)
		}
	}
	if _, err := parseProviders("docker,oci"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown provider: %v", err)
	}
}

func TestAppcDefaults(t *testing.T) {
	o := Options{WorkDir: "/srv/berth"}
	o.setDefaults()
	if o.AppcStoreDir != filepath.Join("/srv/berth", "store", "appc") || o.AppcDiscoveryPrefix != "http://" || o.ImageProviders != DefaultImageProviders {
		t.Errorf("%+v", o)
	}
	if on, err := (Options{ImageProviders: "docker"}).AppcEnabled(); on || err != nil {
		t.Errorf("docker only: %v %v", on, err)
	}
}

// Mesos's appc/runtime is the one runtime isolator, whether named alone or
// beside docker/runtime.
func TestAppcRuntimeIsolatorAlias(t *testing.T) {
	for _, iso := range []string{"appc/runtime", "docker/runtime,appc/runtime", "appc/runtime,docker/runtime"} {
		got, err := buildIsolators(Options{Isolation: iso})
		if err != nil || len(got) != 1 || got[0].Name() != "docker/runtime" {
			t.Errorf("%s: %v %v", iso, got, err)
		}
	}
}
