package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAccessReportHTMLOfARealExport opens an access request for Sanne, who
// wrote on X and WhatsApp, and reads its HTML report: it says what it is,
// lists her messages in the messages table (from her and from the brand,
// on both channels), her contact's fields under labels and her identifiers
// by kind, and holds no Go value dump.
func TestAccessReportHTMLOfARealExport(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	syncSanne(t, s)
	id := openDSR(t, s, "access")
	waitStatus(t, s, id, "completed", 2*time.Minute)

	req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr+"/v1/dsr/"+id+"/report?format=html", nil)
	req.Header.Set("Authorization", "Bearer "+s.Secrets.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("HTML report: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_, body, _ := strings.Cut(string(raw), "</head>")
	for _, want := range []string{
		"access to personal data (GDPR Art. 15)", "<td>" + id + "</td>",
		"<h3>Messages (SocialPost)</h3>", "<td>from you</td>", "<td>from the brand</td>",
		"<h3>Contact details (Contact)</h3>", "<th scope=\"row\">E-mail address</th><td>sanne.devries@example.nl</td>",
		"<h3>E-mail addresses</h3>", "<h3>Phone numbers</h3>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the HTML report lacks %s", want)
		}
	}
	for _, dump := range []string{"map[", "{", "}", "<nil>", "%!"} {
		if i := strings.Index(body, dump); i >= 0 {
			t.Errorf("the HTML report holds a Go value dump %q: …%s…", dump, body[max(0, i-80):min(len(body), i+80)])
		}
	}
	if testing.Verbose() {
		t.Logf("%s", body)
	}
}
