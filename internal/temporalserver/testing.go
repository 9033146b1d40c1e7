package temporalserver

import (
	"context"
	"testing"
	"time"
)

// StartForTest starts a server for an integration test and stops it when the
// test ends. Without a DataDir the server is in memory. It fails the test if
// the server does not start within two minutes.
func StartForTest(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start embedded temporal server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop embedded temporal server: %v", err)
		}
	})
	return s
}
