package meta

import (
	"testing"

	"github.com/webcaresync/webcaresync/schemas"
)

// Two mentions in different comments, the shape Meta documents for the
// mentions field: the value carries only media_id and comment_id.
const instagramTwoMentions = `{"object":"instagram","entry":[{"id":"17841400000000001","time":1714556200,"changes":[` +
	`{"field":"mentions","value":{"media_id":"18000000000000043","comment_id":"17865799348089041"}},` +
	`{"field":"mentions","value":{"media_id":"18000000000000043","comment_id":"17865799348089042"}},` +
	`{"field":"mentions","value":{"media_id":"18000000000000044","comment_id":"17865799348089043","from":{"id":"3344556677","username":"anouk.devries"}}}]}]}`

// TestParseInstagramMentionAuthors checks that mentions without an author
// never share one: each gets a placeholder derived from its own comment id,
// marked as unresolved, which the schema accepts, while a mention that names
// its author keeps it.
func TestParseInstagramMentionAuthors(t *testing.T) {
	events, err := New(testSecret, testToken).Parse([]byte(instagramTwoMentions))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(events), events)
	}
	first, second, named := events[0], events[1], events[2]
	if first.Author.PlatformUserID == second.Author.PlatformUserID {
		t.Fatalf("mentions in comments %s and %s share author id %q: every mention's author would be one data subject",
			first.PlatformMessageID, second.PlatformMessageID, first.Author.PlatformUserID)
	}
	for _, e := range []schemas.Event{first, second} {
		if want := UnresolvedAuthorPrefix + e.PlatformMessageID; e.Author.PlatformUserID != want {
			t.Errorf("mention %s: author id = %q, want %q", e.PlatformMessageID, e.Author.PlatformUserID, want)
		}
		if !IsUnresolvedAuthor(e.Author.PlatformUserID) {
			t.Errorf("mention %s: author id %q is not marked unresolved", e.PlatformMessageID, e.Author.PlatformUserID)
		}
		if e.Author.Handle != "" || e.Author.DisplayName != "" {
			t.Errorf("mention %s: unresolved author has a handle or name: %+v", e.PlatformMessageID, e.Author)
		}
		if err := schemas.ValidateEvent(e); err != nil {
			t.Errorf("mention %s does not validate against the schema: %v", e.PlatformMessageID, err)
		}
	}
	if named.Author != (schemas.Author{PlatformUserID: "3344556677", Handle: "anouk.devries"}) {
		t.Errorf("named mention author = %+v, want the author the payload names", named.Author)
	}
	if IsUnresolvedAuthor(named.Author.PlatformUserID) {
		t.Errorf("a real Instagram-scoped id %q is taken for a placeholder", named.Author.PlatformUserID)
	}
}
