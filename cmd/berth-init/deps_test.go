package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestInitStaysSmall: berth-init starts every container, and its start-up
// time is what it maps and initialises (adr 0009). The agent's libraries
// must not creep into it through process/.
func TestInitStaysSmall(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"go.uber.org/zap", "net/http", "google.golang.org/grpc", "github.com/asynkron/protoactor-go", "github.com/prometheus/", "github.com/google/go-containerregistry"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") || strings.HasPrefix(dep, banned) && strings.HasSuffix(banned, "/") {
				t.Errorf("berth-init links %s", dep)
			}
		}
	}
}
