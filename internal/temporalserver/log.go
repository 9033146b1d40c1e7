package temporalserver

import (
	"fmt"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// serverLogger adapts a zap logger to the server's logger. It drops
// everything below warn level, because the server is chatty at info and
// normal operation should log nothing, and it turns Fatal into a panic
// that Start recovers, because the server calls Fatal (which would exit the
// whole process) when, for example, a port cannot be bound.
type serverLogger struct {
	log.Logger
}

// fatalError is the panic value of serverLogger.Fatal.
type fatalError struct{ msg string }

func (e fatalError) Error() string { return "temporal server failed: " + e.msg }

// newServerLogger returns the server's logger writing to zl. Once stopping
// is set, warnings are dropped too: while the services shut down one by one
// they warn about peers that are already gone.
func newServerLogger(zl *zap.Logger, stopping *atomic.Bool) log.Logger {
	zl = zl.Named("temporal").WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return minLevelCore{Core: c, min: zapcore.WarnLevel, stopping: stopping}
	}))
	return serverLogger{Logger: log.NewZapLogger(zl)}
}

// Fatal logs msg at error level and panics with a fatalError.
func (l serverLogger) Fatal(msg string, tags ...tag.Tag) {
	l.Logger.Error(msg, tags...)
	panic(fatalError{msg: msg})
}

// With returns a logger with tags added to every entry.
func (l serverLogger) With(tags ...tag.Tag) log.Logger {
	return serverLogger{Logger: log.With(l.Logger, tags...)}
}

// Skip returns a logger that skips extra stack frames for caller info.
func (l serverLogger) Skip(extraSkip int) log.Logger {
	sl, ok := l.Logger.(log.SkipLogger)
	if !ok {
		return l
	}
	return serverLogger{Logger: sl.Skip(extraSkip)}
}

// recoverFatal turns a fatalError panic from the server into *err. Other
// panics continue.
func recoverFatal(err *error) {
	r := recover()
	if r == nil {
		return
	}
	fe, ok := r.(fatalError)
	if !ok {
		panic(r)
	}
	*err = fmt.Errorf("%w", fe)
}

// minLevelCore passes entries at min or above (error and above once
// stopping is set) to the wrapped core. Unlike zap.IncreaseLevel it never
// complains when the wrapped core is already stricter.
type minLevelCore struct {
	zapcore.Core
	min      zapcore.Level
	stopping *atomic.Bool // may be nil
}

// floor returns the lowest level that is logged now.
func (c minLevelCore) floor() zapcore.Level {
	if c.stopping != nil && c.stopping.Load() {
		return max(c.min, zapcore.ErrorLevel)
	}
	return c.min
}

// Enabled reports whether an entry at l is logged.
func (c minLevelCore) Enabled(l zapcore.Level) bool {
	return l >= c.floor() && c.Core.Enabled(l)
}

// With returns a core with fields added, keeping the level floor.
func (c minLevelCore) With(fields []zapcore.Field) zapcore.Core {
	return minLevelCore{Core: c.Core.With(fields), min: c.min, stopping: c.stopping}
}

// Check adds the wrapped core to ce when ent is at or above the floor.
func (c minLevelCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if ent.Level < c.floor() {
		return ce
	}
	return c.Core.Check(ent, ce)
}

var (
	_ zapcore.Core   = minLevelCore{}
	_ log.Logger     = serverLogger{}
	_ log.WithLogger = serverLogger{}
	_ log.SkipLogger = serverLogger{}
)
