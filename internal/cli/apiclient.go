package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/config"
)

// apiClient calls a running webcaresync's /v1 API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// apiFlags are the flags of commands that call the API.
type apiFlags struct {
	server string
}

func (f *apiFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "base URL of the running webcaresync (default: http:// + WEBCARESYNC_HTTP_ADDR)")
}

// client builds an API client. The token comes from WEBCARESYNC_API_TOKEN,
// or from the dev admin token file in the data dir.
func (f *apiFlags) client(g *globals) (*apiClient, error) {
	cfg, err := g.load(config.Dev)
	if err != nil {
		return nil, err
	}
	base := f.server
	if base == "" {
		base = "http://" + cfg.HTTPAddr
	}
	token := os.Getenv("WEBCARESYNC_API_TOKEN")
	if token == "" {
		raw, err := os.ReadFile(cfg.Path("admin.token"))
		if err != nil {
			return nil, fmt.Errorf("no API token: set WEBCARESYNC_API_TOKEN, or run against `webcaresync dev` whose admin token is in %s", cfg.Path("admin.token"))
		}
		token = strings.TrimSpace(string(raw))
	}
	return &apiClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do calls the API and decodes a JSON answer into out (when not nil). A
// non-2xx answer becomes an error with the server's message.
func (c *apiClient) do(method, path string, body, out any) error {
	raw, err := c.raw(method, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func (c *apiClient) raw(method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach webcaresync at %s: is it running? (%v)", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	return raw, nil
}

// printJSON prints v indented.
func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
