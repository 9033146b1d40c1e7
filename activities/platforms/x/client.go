// Package x is the X (Twitter) erasure connector. It uses the X API v2 with
// the brand account's OAuth 2.0 user access token:
//
//   - DELETE /2/tweets/:id deletes the brand's own posts and replies;
//   - PUT /2/tweets/:id/hidden {"hidden":true} hides the subject's replies
//     in conversations the brand started (X offers no way to delete them);
//   - DELETE /2/dm_events/:event_id removes the brand's own direct messages
//     from the brand's inbox (the subject's copy stays on X).
//
// The subject's own posts and direct messages cannot be deleted by the
// brand; they are recorded as not possible, with the guidance in Guidance.
package x

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/platforms"
)

// DefaultBaseURL is the X API host used when Config.BaseURL is empty.
const DefaultBaseURL = "https://api.x.com"

// Provider is the crm.PlatformPost provider this connector handles.
const Provider = "x"

// Guidance is shown to the subject for what the brand cannot erase on X.
const Guidance = "X does not let a business delete your own posts or direct messages; only you can. " +
	"To delete a post, open it on X, select the ··· menu and choose Delete. " +
	"To delete a direct message, open the conversation with us, select the message (press and hold on mobile) and choose Delete for you; this removes it from your inbox only. " +
	"Messages you sent stay in our X inbox, because X offers businesses no way to delete them. " +
	"Deactivating your X account deletes your posts and profile."

// Policies name the rule and endpoint behind each ledger row.
const (
	policyDeletePost = "GDPR Art. 17(1): brand's own post deleted with X API v2 DELETE /2/tweets/:id"
	policyDeleteDM   = "GDPR Art. 17(1): brand's own direct message deleted with X API v2 DELETE /2/dm_events/:event_id"
	policyHide       = "GDPR Art. 17(2) reasonable steps: reply hidden with X API v2 PUT /2/tweets/:id/hidden"
	policyNone       = "GDPR Art. 17(2) reasonable steps: no X API to erase it; subject informed how to delete it"
	policyGone       = "GDPR Art. 17(1): already deleted from X by its author"
)

// Config is how the connector reaches X for one brand account.
type Config struct {
	// BaseURL is the X API host. Default: https://api.x.com. Tests point it
	// to a loopback fake.
	BaseURL string
	// UserToken is the brand account's OAuth 2.0 user access token, with
	// the scopes tweet.read, tweet.write, users.read, tweet.moderate.write,
	// dm.read and dm.write. Read it from the environment or a file, never
	// from flags.
	UserToken string
	// HTTPTimeout bounds each HTTP request. Default: 30s.
	HTTPTimeout time.Duration
	// Logger receives debug logs only. Default: no logging.
	Logger *zap.Logger
}

// Client is the X erasure connector. It is safe for concurrent use.
//
// It has no retry loop (resty's retry count is 0): Temporal owns retries,
// with backoff per error kind, and X's limits (50 deletes and 50 hides per
// 15 minutes) make hidden retries costly.
type Client struct {
	cfg  Config
	http *resty.Client
	log  *zap.Logger
	now  func() time.Time
}

// New builds a client; it does not call X until Erase.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &Client{cfg: cfg, log: log.Named("x"), now: time.Now}
	c.http = resty.New().
		SetBaseURL(cfg.BaseURL).
		SetTimeout(cfg.HTTPTimeout).
		SetRetryCount(0).
		SetResponseBodyLimit(1<<20).
		SetHeader("Accept", "application/json").
		SetHeader("User-Agent", "webcaresync").
		SetLogger(platforms.QuietLogger{})
	return c
}

// Name returns "x", the ledger system name.
func (c *Client) Name() string { return "x" }

// Providers returns the one provider this connector handles, "x".
func (c *Client) Providers() []string { return []string{Provider} }

// Capabilities says what the X API v2 allows for provider "x".
func (c *Client) Capabilities(provider string) platforms.Capabilities {
	if provider != Provider {
		return platforms.Capabilities{}
	}
	return platforms.Capabilities{
		DeleteOwnPosts:       true,
		HideComments:         true,
		DeleteComments:       false,
		DeleteDirectMessages: true,
		Guidance:             Guidance,
	}
}

// idPattern is the documented shape of post and DM event ids.
var idPattern = regexp.MustCompile(`^[0-9]{1,19}$`)

// Erase deletes the brand's own posts and direct messages, hides the
// subject's public replies, and records the rest as not possible. Items
// already gone count as erased. It stops at the first error that concerns
// the whole account (token, rate limit, outage); a retry starts over and
// finds the items already handled gone or hidden.
func (c *Client) Erase(ctx context.Context, posts []crm.PlatformPost) ([]platforms.Result, error) {
	for _, p := range posts {
		if p.Provider != Provider {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "UNSUPPORTED_PROVIDER", Message: "the x connector got a post of provider " + platforms.SafeName(p.Provider) + "; route posts with platforms.ForProvider"}
		}
	}
	needsToken := false
	for _, p := range posts {
		if p.Outbound || p.Public {
			needsToken = true
		}
	}
	if needsToken && c.cfg.UserToken == "" {
		return nil, &crm.Error{Kind: crm.Permanent, Code: "X_NO_TOKEN", Message: "no X user access token is configured; give the brand account's OAuth 2.0 user token to webcaresync"}
	}
	var t platforms.Tally
	for _, p := range posts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.eraseOne(ctx, p, &t); err != nil {
			return nil, err
		}
	}
	return t.Results(), nil
}

// eraseOne acts on one post and counts the outcome in t.
func (c *Client) eraseOne(ctx context.Context, p crm.PlatformPost, t *platforms.Tally) error {
	object := objectOf(p)
	if !p.Outbound && !p.Public {
		t.Add(Provider, object, platforms.ActionNotPossible,
			"X offers no API to delete a customer's direct messages; the subject was told how to delete them: "+Guidance, policyNone)
		return nil
	}
	if !idPattern.MatchString(p.ExternalPostID) {
		t.Add(Provider, object, platforms.ActionNotPossible,
			"the CRM holds no valid X id for these items, so nothing could be done on X; the subject was told how to delete their own: "+Guidance, policyNone)
		return nil
	}
	switch {
	case p.Outbound && p.Public:
		f, err := c.call(ctx, "delete X post", http.MethodDelete, "/2/tweets/{id}", p.ExternalPostID, nil, "deleted")
		if err != nil {
			return err
		}
		if f.refused != "" {
			t.Add(Provider, object, platforms.ActionNotPossible, f.refused+"; the post may belong to another brand account: delete it by hand on X", policyNone)
			return nil
		}
		c.log.Debug("deleted own post", zap.String("post_id", p.ExternalPostID), zap.Bool("was_gone", f.gone))
		t.Add(Provider, object, platforms.ActionErased, "deleted with DELETE /2/tweets/:id, or already gone from X", policyDeletePost)
	case p.Outbound:
		f, err := c.call(ctx, "delete X direct message", http.MethodDelete, "/2/dm_events/{id}", p.ExternalPostID, nil, "deleted")
		if err != nil {
			return err
		}
		if f.refused != "" {
			t.Add(Provider, object, platforms.ActionNotPossible, f.refused+"; remove the brand's messages by hand on X", policyNone)
			return nil
		}
		c.log.Debug("deleted own direct message", zap.String("dm_event_id", p.ExternalPostID), zap.Bool("was_gone", f.gone))
		t.Add(Provider, object, platforms.ActionErased,
			"removed from the brand's X inbox with DELETE /2/dm_events/:event_id, or already gone; X keeps the subject's own copy, which only the subject can delete: "+Guidance, policyDeleteDM)
	default:
		f, err := c.call(ctx, "hide X reply", http.MethodPut, "/2/tweets/{id}/hidden", p.ExternalPostID, map[string]bool{"hidden": true}, "hidden")
		if err != nil {
			return err
		}
		switch {
		case f.gone:
			t.Add(Provider, object, platforms.ActionErased, "already deleted from X by its author", policyGone)
		case f.refused != "":
			t.Add(Provider, object, platforms.ActionNotPossible,
				f.refused+": X lets a brand hide only replies in conversations it started, and never delete them; the subject was told how to delete it: "+Guidance, policyNone)
		default:
			t.Add(Provider, object, platforms.ActionHidden,
				"hidden with PUT /2/tweets/:id/hidden (still visible under \"View hidden replies\"); X lets only the author delete it, and the subject was told how: "+Guidance, policyHide)
		}
	}
	return nil
}

// objectOf names what a post is on X.
func objectOf(p crm.PlatformPost) string {
	switch {
	case !p.Public:
		return platforms.ObjectDirectMessage
	case p.Outbound:
		return platforms.ObjectPost
	}
	return platforms.ObjectComment
}

// call makes one X API call on the item id. A 2xx answer whose data holds
// field=true is a success; item-level refusals and gone items come back in
// the failure, and anything that must stop the erasure as the error.
func (c *Client) call(ctx context.Context, op, method, path, id string, body any, field string) (failure, error) {
	req := c.http.R().
		SetContext(ctx).
		SetAuthToken(c.cfg.UserToken).
		SetPathParam("id", id)
	if body != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(body)
	}
	resp, err := req.Execute(method, path)
	if err != nil {
		if ctx.Err() != nil {
			return failure{}, ctx.Err()
		}
		return failure{}, platforms.NetworkError(op, err)
	}
	status := resp.StatusCode()
	if status >= 200 && status < 300 && confirmed(resp.Body(), field) {
		return failure{}, nil
	}
	f := classify(status, resp.Body(), resp.Header(), c.now())
	if f.err != nil {
		return failure{}, f.err
	}
	return f, nil
}

// confirmed reports whether a success body is {"data":{field:true}}.
func confirmed(body []byte, field string) bool {
	var ok struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &ok) != nil {
		return false
	}
	var v bool
	return json.Unmarshal(ok.Data[field], &v) == nil && v
}

var _ platforms.Platform = (*Client)(nil)
