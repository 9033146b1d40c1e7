// Package platforms defines what webcaresync needs from a social platform to
// honour a data subject's erasure request. Each platform is one folder below
// this one (x/, meta/) with the same shape: a Config, New(cfg) *Client, and a
// Client that implements Platform. platformtest/ holds loopback fakes of the
// platforms' documented endpoints for tests.
//
// A platform connector deletes the brand's own replies and comments where the
// documented API allows it, hides (or deletes, where the brand may and is
// configured to) the subject's public comments, and records "not possible
// through the API" with the guidance given to the subject for everything
// else, such as the subject's own posts and direct messages.
package platforms

import (
	"context"
	"errors"
	"net/url"
	"sort"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// The actions a platform reports. They match the ledger's actions.
const (
	// ActionErased means the items are gone from the platform, deleted now
	// or already gone before.
	ActionErased = "erased"
	// ActionHidden means the items are hidden from public view but still
	// exist; only their author can delete them.
	ActionHidden = "hidden"
	// ActionNotPossible means the platform's API offers no way to erase the
	// items; Detail says what was done instead and the guidance given.
	ActionNotPossible = "not_possible"
)

// The objects a platform reports on (Result.Object).
const (
	// ObjectPost is a public post, reply or comment written by the brand.
	ObjectPost = "post"
	// ObjectComment is a public post, reply or comment written by the
	// subject.
	ObjectComment = "comment"
	// ObjectDirectMessage is a private message, from either side.
	ObjectDirectMessage = "direct_message"
)

// Capabilities says what a platform's documented API lets the brand do with
// one provider's items.
type Capabilities struct {
	// DeleteOwnPosts: the brand can delete its own public replies and
	// comments.
	DeleteOwnPosts bool `json:"delete_own_posts"`
	// HideComments: the brand can hide the subject's public comments (or
	// replies) under its own posts.
	HideComments bool `json:"hide_comments"`
	// DeleteComments: the brand can delete the subject's public comments
	// under its own posts.
	DeleteComments bool `json:"delete_comments"`
	// DeleteDirectMessages: the brand can delete direct messages it sent,
	// at least from its own inbox.
	DeleteDirectMessages bool `json:"delete_direct_messages"`
	// Guidance is shown to the subject for what the brand cannot do: how to
	// delete their own posts and messages in the platform's app.
	Guidance string `json:"guidance"`
}

// Result is what a platform did with one kind of item of one provider: one
// ledger row. It carries no personal data and no item ids.
type Result struct {
	// Provider is the crm.PlatformPost provider (x, messenger, instagram,
	// whatsapp, facebook).
	Provider string `json:"provider"`
	// Object is post, comment or direct_message (the Object* constants).
	Object string `json:"object"`
	// Action is erased, hidden or not_possible (the Action* constants).
	Action string `json:"action"`
	// Count is the number of items.
	Count int `json:"count"`
	// Detail says how it was done, or what was done instead and the
	// guidance given to the subject.
	Detail string `json:"detail,omitempty"`
	// Policy names the rule that applied, with the API endpoint used.
	Policy string `json:"policy,omitempty"`
}

// Platform is one social platform's erasure connector. Implementations must
// be safe for concurrent use and make no retries of their own: Temporal owns
// retries.
type Platform interface {
	// Name is the platform's ledger system name, such as "x" or "meta".
	Name() string
	// Providers lists the crm.PlatformPost.Provider values it handles.
	Providers() []string
	// Capabilities says what the API allows for one provider's items. An
	// unknown provider gets the zero Capabilities.
	Capabilities(provider string) Capabilities
	// Erase acts on the posts and returns one Result per provider, object
	// and action, with counts. Items already gone count as erased, so
	// running it twice is harmless. Failures are *crm.Error: Permanent for
	// bad credentials or missing permissions, Concurrency (with RetryAfter)
	// for rate limits, Transient for outages.
	Erase(ctx context.Context, posts []crm.PlatformPost) ([]Result, error)
}

// ForProvider returns the platform in list that handles provider, or nil
// when none does.
func ForProvider(list []Platform, provider string) Platform {
	for _, p := range list {
		if p == nil {
			continue
		}
		for _, name := range p.Providers() {
			if name == provider {
				return p
			}
		}
	}
	return nil
}

// Tally adds up items into Results, one per provider, object and action.
// The zero value is ready to use.
type Tally struct {
	rows map[tallyKey]*Result
}

type tallyKey struct{ provider, object, action string }

// Add counts one item. The first detail and policy given for a key are kept.
func (t *Tally) Add(provider, object, action, detail, policy string) {
	if t.rows == nil {
		t.rows = make(map[tallyKey]*Result)
	}
	k := tallyKey{provider, object, action}
	r, ok := t.rows[k]
	if !ok {
		r = &Result{Provider: provider, Object: object, Action: action, Detail: detail, Policy: policy}
		t.rows[k] = r
	}
	r.Count++
}

// Results returns the counted Results in a stable order: by provider,
// object, then action.
func (t *Tally) Results() []Result {
	out := make([]Result, 0, len(t.rows))
	for _, r := range t.rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Action < b.Action
	})
	return out
}

// NetworkError turns a failed HTTP round trip into a Transient *crm.Error.
// The request URL is dropped from the message, because it can carry item
// ids or, on the Graph API, the access token.
func NetworkError(op string, err error) *crm.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	return &crm.Error{Kind: crm.Transient, Code: "NETWORK", Message: op + " failed: " + msg + "; retrying later"}
}

// Split routes posts to the platforms in list by provider: the result maps
// each platform's Name to its posts, in their original order. Posts whose
// provider no platform handles (such as livechat) come back as unrouted,
// for the caller to record.
func Split(list []Platform, posts []crm.PlatformPost) (byPlatform map[string][]crm.PlatformPost, unrouted []crm.PlatformPost) {
	byPlatform = make(map[string][]crm.PlatformPost)
	for _, p := range posts {
		pl := ForProvider(list, p.Provider)
		if pl == nil {
			unrouted = append(unrouted, p)
			continue
		}
		byPlatform[pl.Name()] = append(byPlatform[pl.Name()], p)
	}
	return byPlatform, unrouted
}

// SafeName returns a provider name for an error message, or "(invalid)"
// when it is not a short lowercase word, so that no outside value is
// echoed.
func SafeName(s string) string {
	if s == "" || len(s) > 32 {
		return "(invalid)"
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' && r != '-' {
			return "(invalid)"
		}
	}
	return s
}

// QuietLogger keeps resty from logging request details on its own (a
// Graph URL carries the access token); the clients report failures as
// errors instead.
type QuietLogger struct{}

// Errorf discards the message.
func (QuietLogger) Errorf(string, ...any) {}

// Warnf discards the message.
func (QuietLogger) Warnf(string, ...any) {}

// Debugf discards the message.
func (QuietLogger) Debugf(string, ...any) {}
