package logging

import (
	"bytes"
	"encoding/json"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Capture holds everything a logger made by NewCapture wrote, so a test can
// assert that known personal data never reached the logs. It is safe for
// concurrent use.
type Capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewCapture returns a debug-level JSON logger writing into a Capture. The
// logger is deliberately not wrapped in ScrubCore: a test must see what the
// code under test logs, not what the safety net saved.
func NewCapture() (*zap.Logger, *Capture) {
	c := &Capture{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(c), zapcore.DebugLevel)
	return zap.New(core, zap.ErrorOutput(zapcore.AddSync(c))), c
}

// Write implements io.Writer.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// Bytes returns a copy of everything logged so far.
func (c *Capture) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

// String returns everything logged so far.
func (c *Capture) String() string { return string(c.Bytes()) }

// Reset forgets everything logged so far.
func (c *Capture) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
}

// Contains reports whether s appears in the logs, as is or in its JSON
// escaped form (non-ASCII and quotes are escaped in JSON output). An empty s
// never matches.
func (c *Capture) Contains(s string) bool {
	if s == "" {
		return false
	}
	logged := c.Bytes()
	if bytes.Contains(logged, []byte(s)) {
		return true
	}
	esc, err := json.Marshal(s)
	if err != nil {
		return false
	}
	return bytes.Contains(logged, esc[1:len(esc)-1])
}

// Leaks returns the values that appear in the logs, for a test message such
// as t.Errorf("logs leak %q", leaks).
func (c *Capture) Leaks(values ...string) []string {
	var out []string
	for _, v := range values {
		if c.Contains(v) {
			out = append(out, v)
		}
	}
	return out
}
