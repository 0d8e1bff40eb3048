package metrics

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"
)

// extensionID is the slot of Metrics among an actor system's extensions;
// protoactor hands out one id per extension type, once per process.
var extensionID = extensions.NextExtensionID()

// extension carries a Metrics in an actor system.
type extension struct{ m *Metrics }

func (extension) ExtensionID() extensions.ExtensionID { return extensionID }

// Register makes m the metrics of sys, where ask.Go and async.Run find it.
// Call it before spawning the actors that use it.
func Register(sys *actor.ActorSystem, m *Metrics) {
	sys.Extensions.Register(extension{m: m})
}

// Of returns the metrics registered on sys, or nil.
func Of(sys *actor.ActorSystem) *Metrics {
	if sys == nil || sys.Extensions == nil {
		return nil
	}
	if e, ok := sys.Extensions.Get(extensionID).(extension); ok {
		return e.m
	}
	return nil
}
