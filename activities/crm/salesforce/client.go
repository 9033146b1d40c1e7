// Package salesforce is the Salesforce CRM connector: a REST client (OAuth
// JWT bearer or client credentials, sObject, Collections, Composite and SOQL)
// and a crm.Connector that writes conversations as SocialPersona, SocialPost
// and Case records through the declarative mapping in mappings/.
package salesforce

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// DefaultAPIVersion is the REST API version used when Config.APIVersion is
// empty.
const DefaultAPIVersion = "v62.0"

// Config is how the connector reaches one Salesforce org.
type Config struct {
	// LoginURL is the OAuth server, such as https://login.salesforce.com,
	// https://test.salesforce.com or the sandbox's URL. It is also the JWT
	// audience.
	LoginURL string
	// ClientID is the connected app's consumer key.
	ClientID string
	// ClientSecret is the connected app's consumer secret, for the
	// client-credentials flow. Used when PrivateKeyPEM is empty.
	ClientSecret string
	// Username is the integration user, the JWT subject.
	Username string
	// PrivateKeyPEM is the RSA key (PKCS#1 or PKCS#8 PEM) that signs JWT
	// bearer assertions. When set, the JWT bearer flow is used.
	PrivateKeyPEM []byte
	// APIVersion is the REST API version, such as v62.0. Default: v62.0.
	APIVersion string
	// AutoAssign sets the Sforce-Auto-Assign header: whether Salesforce's
	// active assignment rules run on the cases the connector creates and
	// reopens. The zero value sends FALSE; webcaresync's configuration
	// (salesforce.auto_assign) defaults to true, Salesforce's own default.
	AutoAssign bool
	// HTTPTimeout bounds each HTTP request. Default: 30s.
	HTTPTimeout time.Duration
	// HardDelete says how an erasure keeps deleted records out of
	// Salesforce's Recycle Bin, where they stay restorable for 15 days:
	//   - "auto": a Bulk API 2.0 hardDelete job when the integration user
	//     has the "Bulk API Hard Delete" permission, otherwise a delete
	//     followed by emptyRecycleBin() for those records;
	//   - "bulk": a hardDelete job only; without the permission the
	//     erasure stops with an error instead of using the Recycle Bin;
	//   - "off": no Bulk API: a delete followed by emptyRecycleBin().
	// Records that were already in the Recycle Bin are purged with
	// emptyRecycleBin() in every mode. Default: "auto".
	HardDelete string
}

// The values of Config.HardDelete.
const (
	HardDeleteAuto = "auto"
	HardDeleteBulk = "bulk"
	HardDeleteOff  = "off"
)

// jwtLifetime is the exp of JWT bearer assertions. Salesforce accepts at
// most a few minutes; short keeps a leaked assertion useless.
const jwtLifetime = 3 * time.Minute

// Client is a Salesforce REST client. It is safe for concurrent use; all
// goroutines share one session and at most one token request is in flight.
//
// The client deliberately has no retry loop (no go-retryablehttp, resty's
// retry count 0): Temporal owns retries, with backoff per error kind.
// Retrying here too would multiply attempts, burn the daily API budget and
// hide failures from the workflow. The one exception is Salesforce's
// INVALID_SESSION_ID, which is retried once after a token refresh because
// that is not a failure but the normal end of a session.
type Client struct {
	cfg     Config
	http    *resty.Client
	log     *zap.Logger
	metrics *metrics
	key     any

	mu      sync.Mutex
	sess    session
	refresh singleflight.Group
}

type session struct {
	token       string
	instanceURL string
	gen         uint64
}

// NewClient builds a client; it does not call Salesforce until first use.
func NewClient(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Client, error) {
	if cfg.LoginURL == "" {
		return nil, errors.New("salesforce login URL is empty; set WEBCARESYNC_SALESFORCE_LOGIN_URL")
	}
	if _, err := url.ParseRequestURI(cfg.LoginURL); err != nil {
		return nil, fmt.Errorf("salesforce login URL is not a URL: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("salesforce client id is empty; set WEBCARESYNC_SALESFORCE_CLIENT_ID")
	}
	if len(cfg.PrivateKeyPEM) == 0 && cfg.ClientSecret == "" {
		return nil, errors.New("salesforce needs a private key (JWT bearer) or a client secret (client credentials); set one")
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if !strings.HasPrefix(cfg.APIVersion, "v") {
		cfg.APIVersion = "v" + cfg.APIVersion
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 30 * time.Second
	}
	switch cfg.HardDelete {
	case "":
		cfg.HardDelete = HardDeleteAuto
	case HardDeleteAuto, HardDeleteBulk, HardDeleteOff:
	default:
		return nil, fmt.Errorf("salesforce hard_delete %q: use auto, bulk or off", cfg.HardDelete)
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := &Client{cfg: cfg, log: log.Named("salesforce"), metrics: newMetrics(reg)}
	if len(cfg.PrivateKeyPEM) > 0 {
		if cfg.Username == "" {
			return nil, errors.New("salesforce JWT bearer flow needs a username; set WEBCARESYNC_SALESFORCE_USERNAME")
		}
		key, err := parseRSAKey(cfg.PrivateKeyPEM)
		if err != nil {
			return nil, err
		}
		c.key = key
	}
	c.http = resty.New().
		SetTimeout(cfg.HTTPTimeout).
		SetRetryCount(0).
		SetHeader("Sforce-Call-Options", "client=webcaresync").
		SetHeader("Accept", "application/json").
		SetLogger(quietLogger{})
	if cfg.AutoAssign {
		c.http.SetHeader("Sforce-Auto-Assign", "TRUE")
	} else {
		c.http.SetHeader("Sforce-Auto-Assign", "FALSE")
	}
	return c, nil
}

func parseRSAKey(pemBytes []byte) (any, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("salesforce private key is not PEM; give the RSA key file of the connected app's certificate")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("salesforce private key is neither PKCS#1 nor PKCS#8 RSA; convert it with openssl pkcs8")
	}
	return k, nil
}

// APIVersion returns the REST API version in use, such as v62.0.
func (c *Client) APIVersion() string { return c.cfg.APIVersion }

// dataPath is the path prefix of the REST API, /services/data/vXX.X.
func (c *Client) dataPath() string { return "/services/data/" + c.cfg.APIVersion }

// currentSession returns the session, logging in when there is none.
func (c *Client) currentSession(ctx context.Context) (session, error) {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s.token != "" {
		return s, nil
	}
	return c.renew(ctx, s.gen)
}

// renew replaces the session of generation stale. Concurrent callers share
// one token request; a caller whose session was already replaced gets the
// new one without another request.
func (c *Client) renew(ctx context.Context, stale uint64) (session, error) {
	v, err, _ := c.refresh.Do("token", func() (any, error) {
		c.mu.Lock()
		cur := c.sess
		c.mu.Unlock()
		if cur.token != "" && cur.gen != stale {
			return cur, nil
		}
		// The token request is shared, so one caller's cancellation must not
		// fail the others; the HTTP timeout still bounds it.
		s, err := c.fetchToken(context.WithoutCancel(ctx))
		if err != nil {
			return session{}, err
		}
		c.mu.Lock()
		s.gen = c.sess.gen + 1
		c.sess = s
		c.mu.Unlock()
		return s, nil
	})
	if err != nil {
		return session{}, err
	}
	return v.(session), nil
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	InstanceURL string `json:"instance_url"`
	Error       string `json:"error"`
}

func (c *Client) fetchToken(ctx context.Context) (session, error) {
	form := map[string]string{}
	if c.key != nil {
		now := time.Now()
		claims := jwt.RegisteredClaims{
			Issuer:    c.cfg.ClientID,
			Subject:   c.cfg.Username,
			Audience:  jwt.ClaimStrings{strings.TrimRight(c.cfg.LoginURL, "/")},
			ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
		}
		assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(c.key)
		if err != nil {
			return session{}, &crm.Error{Kind: crm.Permanent, Code: "JWT_SIGN", Message: "cannot sign the JWT bearer assertion; check the private key"}
		}
		form["grant_type"] = "urn:ietf:params:oauth:grant-type:jwt-bearer"
		form["assertion"] = assertion
	} else {
		form["grant_type"] = "client_credentials"
		form["client_id"] = c.cfg.ClientID
		form["client_secret"] = c.cfg.ClientSecret
	}
	resp, err := c.http.R().SetContext(ctx).SetFormData(form).
		Post(strings.TrimRight(c.cfg.LoginURL, "/") + "/services/oauth2/token")
	if err != nil {
		return session{}, &crm.Error{Kind: crm.Transient, Code: "NETWORK", Message: "token request failed: " + networkReason(err)}
	}
	var tr tokenResponse
	_ = json.Unmarshal(resp.Body(), &tr)
	if resp.StatusCode() >= 500 {
		return session{}, &crm.Error{Kind: crm.Transient, Code: fmt.Sprintf("HTTP_%d", resp.StatusCode()), Message: "token endpoint failed; retrying later", RetryAfter: retryAfter(resp.Header())}
	}
	if resp.StatusCode() != http.StatusOK || tr.AccessToken == "" {
		code := tr.Error
		if code == "" {
			code = fmt.Sprintf("HTTP_%d", resp.StatusCode())
		}
		// Salesforce's error_description is safe but may name the user; keep
		// only the OAuth error code.
		return session{}, &crm.Error{Kind: crm.Permanent, Code: code, Message: "login refused; check the client id, username, key or secret and that the connected app is pre-authorised for the user"}
	}
	inst := strings.TrimRight(tr.InstanceURL, "/")
	if _, err := url.ParseRequestURI(inst); err != nil || inst == "" {
		return session{}, &crm.Error{Kind: crm.Transient, Code: "BAD_INSTANCE_URL", Message: "token response had no usable instance_url"}
	}
	return session{token: tr.AccessToken, instanceURL: inst}, nil
}

// callCounter counts the API calls of one operation.
type callCounter struct{ n atomic.Int64 }

type counterKey struct{}

// withCounter returns a context whose API calls are counted in the result.
func withCounter(ctx context.Context) (context.Context, *callCounter) {
	cc := &callCounter{}
	return context.WithValue(ctx, counterKey{}, cc), cc
}

// request is one REST call below the instance URL.
type request struct {
	method string
	path   string // absolute path, such as /services/data/v62.0/limits
	query  map[string]string
	body   any
	// raw, when set, is sent as the body instead of body, with
	// contentType (Bulk API CSV uploads).
	raw         []byte
	contentType string
	// accept overrides the Accept header (default application/json).
	accept string
}

// response is a REST answer that was not an error.
type response struct {
	status int
	body   []byte
}

// do sends req with the current session. An INVALID_SESSION_ID answer
// renews the session and sends the request once more.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	s, err := c.currentSession(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, s, req)
	if err == nil {
		return resp, nil
	}
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Code != "INVALID_SESSION_ID" {
		return nil, err
	}
	c.metrics.refreshes.Inc()
	s, err = c.renew(ctx, s.gen)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, s, req)
}

func (c *Client) send(ctx context.Context, s session, req request) (*response, error) {
	if cc, ok := ctx.Value(counterKey{}).(*callCounter); ok {
		cc.n.Add(1)
	}
	r := c.http.R().SetContext(ctx).SetAuthToken(s.token)
	if req.query != nil {
		r.SetQueryParams(req.query)
	}
	if req.accept != "" {
		r.SetHeader("Accept", req.accept)
	}
	if req.raw != nil {
		r.SetHeader("Content-Type", req.contentType).SetBody(req.raw)
	} else if req.body != nil {
		data, err := json.Marshal(req.body)
		if err != nil {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "ENCODE", Message: "cannot encode the request body"}
		}
		r.SetHeader("Content-Type", "application/json").SetBody(data)
	}
	resp, err := r.Execute(req.method, s.instanceURL+req.path)
	if err != nil {
		c.metrics.calls.WithLabelValues("network").Inc()
		return nil, &crm.Error{Kind: crm.Transient, Code: "NETWORK", Message: "call failed: " + networkReason(err)}
	}
	c.metrics.observeLimits(resp.Header().Get("Sforce-Limit-Info"))
	status := resp.StatusCode()
	if status < 400 {
		c.metrics.calls.WithLabelValues("ok").Inc()
		c.metrics.budgetExhausted.Set(0)
		return &response{status: status, body: resp.Body()}, nil
	}
	e := classify(status, resp.Body(), resp.Header())
	c.metrics.calls.WithLabelValues(string(e.Kind)).Inc()
	if e.Kind == crm.BudgetExhausted {
		c.metrics.budgetExhausted.Set(1)
	}
	return nil, e
}

// networkReason describes a transport error without URLs or query strings,
// which could carry SOQL filter values.
func networkReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// quietLogger keeps resty from logging request details (which could include
// record data) on its own; the client reports failures as errors instead.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}
