package sfsandbox

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// soapCall posts a partner API call with the session and IDs.
func (e *env) soapCall(op, session string, ids ...string) reply {
	e.t.Helper()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">`)
	b.WriteString(`<soapenv:Header><urn:SessionHeader><urn:sessionId>` + session + `</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:` + op + `>`)
	for _, id := range ids {
		b.WriteString("<urn:ids>" + id + "</urn:ids>")
	}
	b.WriteString(`</urn:` + op + `></soapenv:Body></soapenv:Envelope>`)
	return e.do("POST", "/services/Soap/u/62.0", b.String(), "Content-Type", "text/xml; charset=UTF-8", "SOAPAction", `""`)
}

// soapResults decodes a call's results: per ID, success or the status code.
func soapResults(t *testing.T, r reply) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("SOAP call: %d %s", r.status, r.body)
	}
	var env struct {
		Body struct {
			Response struct {
				Results []struct {
					ID      string `xml:"id"`
					Success bool   `xml:"success"`
					Errors  []struct {
						StatusCode string `xml:"statusCode"`
					} `xml:"errors"`
				} `xml:"result"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal([]byte(r.body), &env); err != nil {
		t.Fatalf("SOAP answer %v: %s", err, r.body)
	}
	var out []string
	for _, res := range env.Body.Response.Results {
		switch {
		case res.Success:
			out = append(out, "ok "+res.ID)
		case len(res.Errors) > 0:
			out = append(out, res.Errors[0].StatusCode)
		default:
			out = append(out, "?")
		}
	}
	return out
}

func TestEmptyRecycleBinPurgesForGood(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, Options{DataDir: dir})
	live := e.create("Contact", map[string]any{"LastName": "Live"})
	binned := e.create("Contact", map[string]any{"LastName": "Binned", "Email": "in.the.bin@example.nl"})
	persona := e.create("SocialPersona", map[string]any{"Name": "binned_x", "Provider": "Twitter", "ParentId": binned})
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+binned, nil), 204, "")
	if all := e.queryAllIDs("SELECT Id, IsDeleted FROM SocialPersona"); !all[persona] {
		t.Fatalf("the persona did not follow its contact to the Recycle Bin: %v", all)
	}
	e.sb.ResetCounters()
	r := e.soapCall("emptyRecycleBin", e.token, binned, live, newID("003", 9999), "bogus")
	got := soapResults(t, r)
	want := []string{"ok " + binned, "INVALID_ID_FIELD", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if !strings.Contains(r.body, "<LimitInfoHeader><limitInfo><current>") {
		t.Errorf("no LimitInfoHeader: %s", r.body)
	}
	if n := e.sb.Calls()["POST /services/Soap/u/XX.X emptyRecycleBin"]; n != 1 {
		t.Errorf("calls %v", e.sb.Calls())
	}
	if all := e.queryAllIDs("SELECT Id, IsDeleted FROM Contact"); len(all) != 1 || all[live] {
		t.Errorf("queryAll after the purge: %v", all)
	}
	if all := e.queryAllIDs("SELECT Id, IsDeleted FROM SocialPersona"); len(all) != 0 {
		t.Errorf("the cascaded persona was not purged with its contact: %v", all)
	}
	// A second purge of the same record: it is gone, not in the bin.
	if got := soapResults(t, e.soapCall("emptyRecycleBin", e.token, binned)); got[0] != "INVALID_CROSS_REFERENCE_KEY" {
		t.Errorf("second purge %v", got)
	}
	// Purged records cannot be restored.
	if got := soapResults(t, e.soapCall("undelete", e.token, binned)); got[0] != "UNDELETE_FAILED" {
		t.Errorf("undelete after the purge %v", got)
	}
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(filepath.Join(dir, "sfsandbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"in.the.bin@example.nl", binned, persona, "binned_x"} {
		if strings.Contains(string(snap), s) {
			t.Errorf("the purged records are still in the snapshot on disk: found %q", s)
		}
	}
}

func TestUndeleteRestoresWhatTheRecycleBinHolds(t *testing.T) {
	e := newEnv(t, Options{})
	contact := e.create("Contact", map[string]any{"LastName": "Back", "Email": "back.again@example.nl"})
	persona := e.create("SocialPersona", map[string]any{"Name": "back_x", "Provider": "Twitter", "ParentId": contact})
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+contact, nil), 204, "")
	// The persona went with its contact: it comes back with it, not alone.
	if got := soapResults(t, e.soapCall("undelete", e.token, persona)); got[0] != "UNDELETE_FAILED" {
		t.Errorf("undelete of the cascaded persona alone %v", got)
	}
	if got := soapResults(t, e.soapCall("undelete", e.token, contact, contact[:15])); fmt.Sprint(got) != fmt.Sprint([]string{"ok " + contact, "UNDELETE_FAILED"}) {
		t.Errorf("undelete %v", got)
	}
	r := e.do("GET", v+"/sobjects/Contact/"+contact, nil)
	if r.status != 200 || !strings.Contains(r.body, "back.again@example.nl") {
		t.Errorf("the undeleted contact: %d %s", r.status, r.body)
	}
	if recs := e.sb.Records("SocialPersona"); len(recs) != 1 || recs[0]["Id"] != persona {
		t.Errorf("the persona did not come back with its contact: %v", recs)
	}
}

func TestEmptyRecycleBinWithoutAccess(t *testing.T) {
	e := newEnv(t, Options{NoEmptyRecycleBin: true})
	id := e.create("Contact", map[string]any{"LastName": "Stuck"})
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+id, nil), 204, "")
	if got := soapResults(t, e.soapCall("emptyRecycleBin", e.token, id)); got[0] != "INSUFFICIENT_ACCESS_OR_READONLY" {
		t.Errorf("results %v", got)
	}
	if all := e.queryAllIDs("SELECT Id, IsDeleted FROM Contact"); !all[id] {
		t.Error("a refused purge removed the record")
	}
	e.expect(e.do("POST", "/_sandbox/permissions?empty_recycle_bin=true", nil), 200, "")
	if got := soapResults(t, e.soapCall("emptyRecycleBin", e.token, id)); got[0] != "ok "+id {
		t.Errorf("after granting: %v", got)
	}
}

func TestSOAPFaults(t *testing.T) {
	e := newEnv(t, Options{})
	fault := func(r reply, status int, code string) {
		t.Helper()
		if r.status != status || !strings.Contains(r.body, "<faultcode>"+code+"</faultcode>") {
			t.Errorf("want %d %s, got %d %s", status, code, r.status, r.body)
		}
	}
	fault(e.soapCall("emptyRecycleBin", "stale-token", newID("003", 1)), 500, "sf:INVALID_SESSION_ID")
	ids := make([]string, 201)
	for i := range ids {
		ids[i] = newID("003", uint64(i+1))
	}
	fault(e.soapCall("emptyRecycleBin", e.token, ids...), 500, "sf:EXCEEDED_ID_LIMIT")
	fault(e.soapCall("login", e.token), 500, "soapenv:Client")
	fault(e.do("POST", "/services/Soap/u/62.0", "<not-soap", "Content-Type", "text/xml"), 500, "soapenv:Client")
	r := e.do("POST", "/services/Soap/u/99.0", soapEnvelope(e.token, "emptyRecycleBin"), "Content-Type", "text/xml")
	fault(r, 500, "sf:UNSUPPORTED_API_VERSION")
	e.sb.ExhaustBudget()
	fault(e.soapCall("emptyRecycleBin", e.token, newID("003", 1)), 500, "sf:REQUEST_LIMIT_EXCEEDED")
	e.sb.ResetBudget()
	e.sb.Outage(3 * time.Second)
	r = e.soapCall("emptyRecycleBin", e.token, newID("003", 1))
	fault(r, 503, "sf:SERVER_UNAVAILABLE")
	if r.header.Get("Retry-After") == "" {
		t.Error("an outage fault without Retry-After")
	}
}

// soapEnvelope is a minimal partner API envelope for one call.
func soapEnvelope(session, op string, ids ...string) string {
	var b strings.Builder
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>` +
		session + `</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:` + op + `>`)
	for _, id := range ids {
		b.WriteString("<urn:ids>" + id + "</urn:ids>")
	}
	b.WriteString(`</urn:` + op + `></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

func TestParseSOAP(t *testing.T) {
	req, err := parseSOAP([]byte(soapEnvelope("tok", "emptyRecycleBin", " 003A ", "003B")))
	if err != nil || req.SessionID != "tok" || req.Operation.Local != "emptyRecycleBin" || req.Operation.Space != nsPartner ||
		fmt.Sprint(req.IDs) != "[003A 003B]" {
		t.Errorf("%+v %v", req, err)
	}
	for _, bad := range []string{"", "<x/>", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>`, "<soapenv:Envelope"} {
		if _, err := parseSOAP([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
