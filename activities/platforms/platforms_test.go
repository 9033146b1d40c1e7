package platforms_test

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/platforms"
)

// stub is a Platform that handles the given providers.
type stub struct {
	name      string
	providers []string
}

func (s stub) Name() string                                                          { return s.name }
func (s stub) Providers() []string                                                   { return s.providers }
func (s stub) Capabilities(string) platforms.Capabilities                            { return platforms.Capabilities{} }
func (s stub) Erase(context.Context, []crm.PlatformPost) ([]platforms.Result, error) { return nil, nil }

var _ platforms.Platform = stub{}

func TestForProvider(t *testing.T) {
	x := stub{"x", []string{"x"}}
	meta := stub{"meta", []string{"messenger", "instagram", "whatsapp"}}
	list := []platforms.Platform{nil, x, meta}
	cases := map[string]string{"x": "x", "instagram": "meta", "whatsapp": "meta", "livechat": "", "": ""}
	for provider, want := range cases {
		got := platforms.ForProvider(list, provider)
		name := ""
		if got != nil {
			name = got.Name()
		}
		if name != want {
			t.Errorf("ForProvider(%q) = %q, want %q", provider, name, want)
		}
	}
	if platforms.ForProvider(nil, "x") != nil {
		t.Errorf("ForProvider on an empty list is not nil")
	}
}

func TestTallyCountsPerProviderObjectAndAction(t *testing.T) {
	var tl platforms.Tally
	if got := tl.Results(); len(got) != 0 {
		t.Fatalf("empty tally = %+v", got)
	}
	tl.Add("x", platforms.ObjectPost, platforms.ActionErased, "first", "p1")
	tl.Add("meta", platforms.ObjectComment, platforms.ActionHidden, "h", "p2")
	tl.Add("x", platforms.ObjectPost, platforms.ActionErased, "second", "p3")
	tl.Add("x", platforms.ObjectPost, platforms.ActionNotPossible, "n", "p4")
	want := []platforms.Result{
		{Provider: "meta", Object: "comment", Action: "hidden", Count: 1, Detail: "h", Policy: "p2"},
		{Provider: "x", Object: "post", Action: "erased", Count: 2, Detail: "first", Policy: "p1"},
		{Provider: "x", Object: "post", Action: "not_possible", Count: 1, Detail: "n", Policy: "p4"},
	}
	if got := tl.Results(); !reflect.DeepEqual(got, want) {
		t.Errorf("results = %+v, want %+v", got, want)
	}
}

func TestNetworkErrorDropsTheURL(t *testing.T) {
	inner := errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
	err := platforms.NetworkError("delete X post", &url.Error{Op: "Delete", URL: "https://graph.example/v23.0/123?access_token=secret", Err: inner})
	if err.Kind != crm.Transient || err.Code != "NETWORK" {
		t.Errorf("err = %+v, want transient NETWORK", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "123") {
		t.Errorf("error keeps the URL: %v", err)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "delete X post") {
		t.Errorf("error lacks the cause or operation: %v", err)
	}
}

func TestSplitRoutesByProvider(t *testing.T) {
	list := []platforms.Platform{stub{"x", []string{"x"}}, stub{"meta", []string{"messenger", "whatsapp"}}}
	posts := []crm.PlatformPost{
		{Provider: "whatsapp", ExternalPostID: "w1"},
		{Provider: "x", ExternalPostID: "1"},
		{Provider: "livechat", ExternalPostID: "l1"},
		{Provider: "messenger", ExternalPostID: "m1"},
	}
	by, unrouted := platforms.Split(list, posts)
	want := map[string][]crm.PlatformPost{
		"x":    {posts[1]},
		"meta": {posts[0], posts[3]},
	}
	if !reflect.DeepEqual(by, want) {
		t.Errorf("by platform = %+v, want %+v", by, want)
	}
	if !reflect.DeepEqual(unrouted, []crm.PlatformPost{posts[2]}) {
		t.Errorf("unrouted = %+v", unrouted)
	}
}
