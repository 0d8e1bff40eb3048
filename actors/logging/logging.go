// Package logging builds Berth's zap loggers and routes protoactor's slog
// output into the same zap core, so one process writes one log stream.
package logging

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

// Options select the log format and level.
type Options struct {
	// Format is "console" (default) or "json".
	Format string
	// Level is debug, info, warn or error (default warn for the CLI).
	Level string
}

// New builds a zap logger writing to stderr.
func New(o Options) (*zap.Logger, error) {
	lvl := zapcore.WarnLevel
	if o.Level != "" {
		if err := lvl.Set(o.Level); err != nil {
			return nil, fmt.Errorf("log level %q: %w", o.Level, err)
		}
	}
	var enc zapcore.Encoder
	switch o.Format {
	case "", "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		enc = zapcore.NewConsoleEncoder(cfg)
	case "json":
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	default:
		return nil, fmt.Errorf("log format %q: want console or json", o.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core), nil
}

// SystemOption routes an actor system's slog logging into zl.
func SystemOption(zl *zap.Logger) actor.ConfigOption {
	return actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(zapslog.NewHandler(zl.Core(), zapslog.WithName("protoactor"))).With("system", s.ID)
	})
}
