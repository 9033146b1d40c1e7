// Package meta is the Meta erasure connector for Facebook Page comments,
// Messenger, Instagram and WhatsApp. It uses the Graph API with a Page
// access token (sent as access_token):
//
//   - DELETE /{comment-id} deletes the Page's own comments, and the
//     subject's comments on the Page's posts when configured to;
//   - POST /{comment-id} is_hidden=true hides the subject's comments on
//     the Page's posts;
//   - DELETE /{ig-comment-id} and POST /{ig-comment-id} hide=true do the
//     same on the Instagram account's media.
//
// Neither the Messenger Platform, Instagram messaging nor the WhatsApp
// Cloud API can delete or recall delivered messages, so direct messages are
// recorded as not possible, with the per-app guidance given to the subject.
package meta

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

// DefaultBaseURL is the Graph API host used when Config.BaseURL is empty.
const DefaultBaseURL = "https://graph.facebook.com"

// DefaultAPIVersion is the Graph API version used when Config.APIVersion is
// empty.
const DefaultAPIVersion = "v23.0"

// The crm.PlatformPost providers this connector handles. Facebook Page
// comments arrive as "facebook", or as "messenger" with Public set.
const (
	ProviderMessenger = "messenger"
	ProviderInstagram = "instagram"
	ProviderWhatsApp  = "whatsapp"
	ProviderFacebook  = "facebook"
)

// Guidance per provider, shown to the subject for what the brand cannot
// erase through Meta's APIs.
const (
	GuidanceMessenger = "Messenger does not let a business delete messages through its API, neither yours nor ours. " +
		"You can remove your messages yourself: in Messenger, open the conversation with our Page, press and hold a message (or hover over it and select ···), choose Remove, then Unsend or Remove for you. " +
		"To delete the whole conversation, press and hold it in your chat list (or select ··· next to it) and choose Delete. " +
		"Comments you wrote on our Facebook posts you can delete by selecting ··· next to the comment and choosing Delete."
	GuidanceFacebook  = "Comments you wrote on our Facebook Page you can delete yourself: select ··· next to the comment (press and hold on mobile) and choose Delete."
	GuidanceInstagram = "Instagram does not let a business delete direct messages through its API. " +
		"You can unsend your own messages: in Instagram, open the chat with our account, press and hold a message and choose Unsend. " +
		"To remove the chat from your inbox, press and hold it in your chat list (or swipe left) and choose Delete. " +
		"Comments you wrote you can delete by swiping left on the comment (or pressing and holding it) and tapping the bin icon."
	GuidanceWhatsApp = "WhatsApp does not let a business delete or recall delivered messages through its API, and your chat history is stored on your own phone. " +
		"To delete messages: open the chat with us, press and hold a message, tap Delete and choose Delete for me. " +
		"To delete the whole chat: in your chat list press and hold our chat and tap Delete, or open the chat and choose More > Clear chat."
)

// Policies name the rule and endpoint behind each ledger row.
const (
	policyDeleteOwn   = "GDPR Art. 17(1): brand's own comment deleted with Graph API DELETE /{comment-id}"
	policyDeleteTheir = "GDPR Art. 17(1): subject's comment on the brand's post deleted with Graph API DELETE /{comment-id}"
	policyHideFB      = "GDPR Art. 17(2) reasonable steps: comment hidden with Graph API POST /{comment-id} is_hidden=true"
	policyHideIG      = "GDPR Art. 17(2) reasonable steps: comment hidden with Graph API POST /{ig-comment-id} hide=true"
	policyNone        = "GDPR Art. 17(2) reasonable steps: no Meta API to erase it; subject informed how to delete it"
	policyGone        = "GDPR Art. 17(1): already deleted from the platform by its author"
)

// Config is how the connector reaches the Graph API for one brand.
type Config struct {
	// BaseURL is the Graph API host. Default: https://graph.facebook.com.
	// Tests point it to a loopback fake.
	BaseURL string
	// APIVersion is the Graph API version, such as v23.0. Default: v23.0.
	APIVersion string
	// PageToken is the Page access token, with pages_manage_engagement and
	// pages_read_engagement for Facebook comments and
	// instagram_manage_comments for the Page's linked Instagram account.
	// Read it from the environment or a file, never from flags.
	PageToken string
	// DeleteInboundComments deletes the subject's comments on the brand's
	// posts instead of hiding them; a Page may delete comments on its own
	// posts. Default: false (hide, which the subject can still see and
	// delete themselves).
	DeleteInboundComments bool
	// HTTPTimeout bounds each HTTP request. Default: 30s.
	HTTPTimeout time.Duration
	// Logger receives debug logs only. Default: no logging.
	Logger *zap.Logger
}

// Client is the Meta erasure connector. It is safe for concurrent use.
//
// It has no retry loop (resty's retry count is 0): Temporal owns retries,
// with backoff per error kind, and Graph throttling gets worse when
// retried early.
type Client struct {
	cfg  Config
	http *resty.Client
	log  *zap.Logger
}

// New builds a client; it does not call Meta until Erase.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if !strings.HasPrefix(cfg.APIVersion, "v") {
		cfg.APIVersion = "v" + cfg.APIVersion
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &Client{cfg: cfg, log: log.Named("meta")}
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

// Name returns "meta", the ledger system name.
func (c *Client) Name() string { return "meta" }

// Providers returns messenger, instagram, whatsapp and facebook.
func (c *Client) Providers() []string {
	return []string{ProviderMessenger, ProviderInstagram, ProviderWhatsApp, ProviderFacebook}
}

// Capabilities says what Meta's APIs allow for one provider's items.
func (c *Client) Capabilities(provider string) platforms.Capabilities {
	switch provider {
	case ProviderMessenger:
		return platforms.Capabilities{DeleteOwnPosts: true, HideComments: true, DeleteComments: true, Guidance: GuidanceMessenger}
	case ProviderFacebook:
		return platforms.Capabilities{DeleteOwnPosts: true, HideComments: true, DeleteComments: true, Guidance: GuidanceFacebook}
	case ProviderInstagram:
		return platforms.Capabilities{DeleteOwnPosts: true, HideComments: true, DeleteComments: true, Guidance: GuidanceInstagram}
	case ProviderWhatsApp:
		return platforms.Capabilities{Guidance: GuidanceWhatsApp}
	}
	return platforms.Capabilities{}
}

// idPattern is the shape of comment ids: digits, with an underscore
// between post and comment id on Facebook.
var idPattern = regexp.MustCompile(`^[0-9][0-9_]{0,99}$`)

// Erase deletes the brand's own comments, hides (or deletes, when
// configured) the subject's comments on the brand's posts, and records
// direct messages as not possible. Items already gone count as erased. It
// stops at the first error that concerns the whole account (token,
// permission, rate limit, outage); a retry starts over and finds the items
// already handled gone or hidden.
func (c *Client) Erase(ctx context.Context, posts []crm.PlatformPost) ([]platforms.Result, error) {
	needsToken := false
	for _, p := range posts {
		if c.Capabilities(p.Provider).Guidance == "" {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "UNSUPPORTED_PROVIDER", Message: "the meta connector got a post of provider " + platforms.SafeName(p.Provider) + "; route posts with platforms.ForProvider"}
		}
		if isComment(p) {
			needsToken = true
		}
	}
	if needsToken && c.cfg.PageToken == "" {
		return nil, &crm.Error{Kind: crm.Permanent, Code: "GRAPH_NO_TOKEN", Message: "no Meta Page access token is configured; give the Page access token to webcaresync"}
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

// isComment reports whether a post is a public comment the Graph API can
// act on: Facebook and Instagram comments, not messages.
func isComment(p crm.PlatformPost) bool {
	return p.Public && p.Provider != ProviderWhatsApp
}

// eraseOne acts on one post and counts the outcome in t.
func (c *Client) eraseOne(ctx context.Context, p crm.PlatformPost, t *platforms.Tally) error {
	guidance := c.Capabilities(p.Provider).Guidance
	if !isComment(p) {
		t.Add(p.Provider, platforms.ObjectDirectMessage, platforms.ActionNotPossible, dmDetail(p.Provider)+" The subject was told how to delete them: "+guidance, policyNone)
		return nil
	}
	object := platforms.ObjectComment
	if p.Outbound {
		object = platforms.ObjectPost
	}
	if !idPattern.MatchString(p.ExternalPostID) {
		t.Add(p.Provider, object, platforms.ActionNotPossible,
			"the CRM holds no valid Graph id for these items, so nothing could be done on the platform; the subject was told how to delete their own: "+guidance, policyNone)
		return nil
	}
	instagram := p.Provider == ProviderInstagram
	if p.Outbound || c.cfg.DeleteInboundComments {
		f, err := c.call(ctx, "delete Meta comment", http.MethodDelete, p.ExternalPostID, nil)
		if err != nil {
			return err
		}
		if f.refused != "" {
			t.Add(p.Provider, object, platforms.ActionNotPossible, f.refused+"; delete it by hand in Meta Business Suite. The subject was told how to delete their own: "+guidance, policyNone)
			return nil
		}
		if p.Outbound {
			c.log.Debug("deleted own comment", zap.String("comment_id", p.ExternalPostID), zap.Bool("was_gone", f.gone))
			t.Add(p.Provider, object, platforms.ActionErased, "deleted with DELETE /{comment-id}, or already gone", policyDeleteOwn)
			return nil
		}
		t.Add(p.Provider, object, platforms.ActionErased, "deleted with DELETE /{comment-id}, or already gone", policyDeleteTheir)
		return nil
	}
	params := map[string]string{"is_hidden": "true"}
	policy, how := policyHideFB, "POST /{comment-id} is_hidden=true"
	if instagram {
		params = map[string]string{"hide": "true"}
		policy, how = policyHideIG, "POST /{ig-comment-id} hide=true"
	}
	f, err := c.call(ctx, "hide Meta comment", http.MethodPost, p.ExternalPostID, params)
	if err != nil {
		return err
	}
	switch {
	case f.gone:
		t.Add(p.Provider, object, platforms.ActionErased, "already deleted from the platform by its author", policyGone)
	case f.refused != "":
		t.Add(p.Provider, object, platforms.ActionNotPossible, f.refused+"; the subject was told how to delete it: "+guidance, policyNone)
	default:
		t.Add(p.Provider, object, platforms.ActionHidden,
			"hidden with "+how+" (still visible to its author); only the author can delete it, and the subject was told how: "+guidance, policy)
	}
	return nil
}

// dmDetail says why direct messages of a provider cannot be erased.
func dmDetail(provider string) string {
	switch provider {
	case ProviderWhatsApp:
		return "The WhatsApp Cloud API cannot delete or recall delivered messages, from either side."
	case ProviderInstagram:
		return "Instagram messaging offers no API to delete messages, from either side."
	}
	return "The Messenger Platform offers no API to delete messages, from either side."
}

// call makes one Graph API call on the object id. A 2xx {"success":true}
// is a success; item-level refusals and gone items come back in the
// failure, and anything that must stop the erasure as the error. The token
// goes in the query for DELETE and in the form body for POST.
func (c *Client) call(ctx context.Context, op, method, id string, form map[string]string) (failure, error) {
	req := c.http.R().
		SetContext(ctx).
		SetPathParams(map[string]string{"version": c.cfg.APIVersion, "id": id})
	if method == http.MethodPost {
		data := map[string]string{"access_token": c.cfg.PageToken}
		for k, v := range form {
			data[k] = v
		}
		req.SetFormData(data)
	} else {
		req.SetQueryParam("access_token", c.cfg.PageToken)
	}
	resp, err := req.Execute(method, "/{version}/{id}")
	if err != nil {
		if ctx.Err() != nil {
			return failure{}, ctx.Err()
		}
		return failure{}, platforms.NetworkError(op, err)
	}
	status := resp.StatusCode()
	if status >= 200 && status < 300 && succeeded(resp.Body()) {
		return failure{}, nil
	}
	f := classify(status, resp.Body(), resp.Header())
	if f.err != nil {
		return failure{}, f.err
	}
	return f, nil
}

// succeeded reports whether a success body is {"success":true}.
func succeeded(body []byte) bool {
	var ok struct {
		Success bool `json:"success"`
	}
	return json.Unmarshal(body, &ok) == nil && ok.Success
}

var _ platforms.Platform = (*Client)(nil)
