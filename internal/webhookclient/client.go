// Package webhookclient posts signed webhooks the way the platforms do:
// Meta's X-Hub-Signature-256, X's x-twitter-webhooks-signature, and the
// generic channel's timestamped HMAC, retrying on 5xx as the platforms
// retry. The demo, the bench and the end-to-end tests use it.
package webhookclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
)

// Secrets are the shared secrets the webhooks are signed with.
type Secrets struct {
	MetaAppSecret   string
	XConsumerSecret string
	GenericSecret   string
}

// Client posts signed webhooks to one webcaresync.
type Client struct {
	base    string
	secrets Secrets
	http    *retryablehttp.Client
}

// New returns a client for the webcaresync at baseURL. retries is how often
// a 5xx or a connection error is retried (the platforms retry for hours;
// the demo and tests a few times). A zero retries sends once.
func New(baseURL string, s Secrets, retries int) *Client {
	c := retryablehttp.NewClient()
	c.RetryMax = retries
	c.RetryWaitMin = 200 * time.Millisecond
	c.RetryWaitMax = 2 * time.Second
	c.Logger = nil
	c.HTTPClient.Timeout = 30 * time.Second
	c.HTTPClient.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	// Return the last response instead of an error when retries run out,
	// so the caller sees the status code.
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{base: strings.TrimRight(baseURL, "/"), secrets: s, http: c}
}

// Post signs body for the channel ("meta", "x" or "generic") and posts it
// to /webhooks/{channel}. It returns the final status code and body.
func (c *Client) Post(ctx context.Context, channel string, body []byte) (int, []byte, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.base+"/webhooks/"+channel, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	switch channel {
	case "meta":
		req.Header.Set("X-Hub-Signature-256", meta.Sign(c.secrets.MetaAppSecret, body))
	case "x":
		req.Header.Set("x-twitter-webhooks-signature", x.Sign(c.secrets.XConsumerSecret, body))
	case "generic":
		// A retry reuses the signature; the 5-minute window covers it.
		sig, ts := generic.Sign(c.secrets.GenericSecret, time.Now(), body)
		req.Header.Set("X-Webcaresync-Signature", sig)
		req.Header.Set("X-Webcaresync-Timestamp", ts)
	default:
		return 0, nil, fmt.Errorf("unknown channel %q: use meta, x or generic", channel)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, err
}
