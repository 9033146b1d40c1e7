package temporalserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// startUI starts the Temporal Web UI on opts.UIPort and waits until it
// answers its health check.
func (s *Server) startUI(ctx context.Context) error {
	addr := hostPort(s.opts.IP, s.opts.UIPort)
	// The UI server exits the process when it cannot bind, so check first
	// that the port is free and fail with an error instead.
	if err := checkPortFree(s.opts.IP, s.opts.UIPort); err != nil {
		return fmt.Errorf("temporal web UI port %d is not free: stop what uses it or choose another port: %w", s.opts.UIPort, err)
	}

	cfg := &uiconfig.Config{
		Host:                s.opts.IP,
		Port:                s.opts.UIPort,
		TemporalGRPCAddress: s.frontendHost,
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		DisableNewsFetch:    true,
		HideLogs:            true,
		// The UI is served over plain HTTP on loopback, so its CSRF cookie
		// must not be marked Secure.
		CORS: uiconfig.CORS{CookieInsecure: true},
	}
	if s.opts.UICodecEndpoint != "" {
		cfg.Codec = uiconfig.Codec{Endpoint: s.opts.UICodecEndpoint, IncludeCredentials: true}
	}
	ui := uiserver.NewServer(uiserveroptions.WithConfigProvider(cfg))
	s.ui = ui
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = ui.Start()
	}()

	base := "http://" + addr
	hc := &http.Client{Timeout: 2 * time.Second}
	err := retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("web UI health check returned %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for temporal web UI on %s: %w", addr, err)
	}
	s.uiAddress = base
	return nil
}
