package salesforce

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
)

func TestHardDeleteAndEmptyRecycleBinClient(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	c := e.conn.Client()
	a, _ := e.sb.Seed("Contact", map[string]any{"LastName": "A"})
	b, _ := e.sb.Seed("Contact", map[string]any{"LastName": "B"})
	binned, _ := e.sb.Seed("Contact", map[string]any{"LastName": "Binned"})
	if _, err := c.CollectionDelete(ctx, []string{binned}); err != nil {
		t.Fatal(err)
	}
	res, err := c.HardDelete(ctx, "Contact", []string{a, binned, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Err != nil || res[2].Err != nil || res[1].Err == nil || res[1].Err.Code != "ENTITY_IS_DELETED" || res[1].ID != binned {
		t.Fatalf("results %+v", res)
	}
	// A hard delete cannot reach the Recycle Bin; emptyRecycleBin can.
	purged, err := c.EmptyRecycleBin(ctx, []string{binned, a})
	if err != nil {
		t.Fatal(err)
	}
	if len(purged) != 2 || purged[0].Err != nil || purged[0].ID != binned || purged[1].Err == nil || purged[1].Err.Code != "INVALID_CROSS_REFERENCE_KEY" {
		t.Errorf("purge %+v", purged)
	}
	if n := len(e.sb.AllRecords("Contact")); n != 0 {
		t.Errorf("%d contacts left, in the Recycle Bin or not", n)
	}
	// 201 IDs take two calls.
	ids := make([]string, 201)
	for i := range ids {
		ids[i], _ = e.sb.Seed("Task", map[string]any{"Subject": "t"})
	}
	if _, err := c.CollectionDelete(ctx, ids[:200]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CollectionDelete(ctx, ids[200:]); err != nil {
		t.Fatal(err)
	}
	before := e.sb.Calls()["POST /services/Soap/u/XX.X emptyRecycleBin"]
	purged, err = c.EmptyRecycleBin(ctx, ids)
	if err != nil || len(purged) != 201 {
		t.Fatalf("%d results, %v", len(purged), err)
	}
	if n := e.sb.Calls()["POST /services/Soap/u/XX.X emptyRecycleBin"] - before; n != 2 {
		t.Errorf("201 IDs took %d calls, want 2", n)
	}
}

func TestEmptyRecycleBinRenewsTheSessionAndClassifiesFaults(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	c := e.conn.Client()
	id, _ := e.sb.Seed("Contact", map[string]any{"LastName": "X"})
	if _, err := c.CollectionDelete(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	e.sb.ExpireSessions()
	res, err := c.EmptyRecycleBin(ctx, []string{id})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("after the session expired: %+v %v", res, err)
	}
	if n := value(c.metrics.refreshes); n != 1 {
		t.Errorf("session refreshes = %v, want 1", n)
	}
	e.sb.Outage(time.Minute)
	_, err = c.EmptyRecycleBin(ctx, []string{id})
	var ce *crm.Error
	if !asCRMError(err, &ce) || ce.Kind != crm.Transient || ce.RetryAfter <= 0 {
		t.Errorf("during an outage: %+v", err)
	}
	e.sb.Outage(0)
	e.sb.ExhaustBudget()
	if _, err := c.EmptyRecycleBin(ctx, []string{id}); crm.KindOf(err) != crm.BudgetExhausted {
		t.Errorf("without budget: %v", err)
	}
}

func TestHardDeleteWithoutPermission(t *testing.T) {
	e := newEnv(t, envOpts{sandbox: func(o *sfsandbox.Options) { o.NoBulkHardDelete = true }})
	id, _ := e.sb.Seed("Contact", map[string]any{"LastName": "X"})
	_, err := e.conn.Client().HardDelete(context.Background(), "Contact", []string{id})
	var ce *crm.Error
	if !asCRMError(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "FEATURENOTENABLED" || !strings.Contains(ce.Message, "grant it") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigHardDelete(t *testing.T) {
	if _, err := NewClient(Config{LoginURL: "https://login.salesforce.com", ClientID: "x", ClientSecret: "y", HardDelete: "always"}, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "auto, bulk or off") {
		t.Errorf("err = %v", err)
	}
	c, err := NewClient(Config{LoginURL: "https://login.salesforce.com", ClientID: "x", ClientSecret: "y"}, nil, nil)
	if err != nil || c.cfg.HardDelete != HardDeleteAuto {
		t.Errorf("default %q %v", c.cfg.HardDelete, err)
	}
}

func TestExportIncludesTheRecycleBin(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	live, _ := e.sb.Seed("Contact", map[string]any{"LastName": "Live"})
	binned, _ := e.sb.Seed("Contact", map[string]any{"LastName": "Binned", "Email": "binned@example.nl"})
	if _, err := e.conn.Client().CollectionDelete(ctx, []string{binned}); err != nil {
		t.Fatal(err)
	}
	out, err := e.conn.Export(ctx, map[string][]string{"Contact": {live, binned}})
	if err != nil {
		t.Fatal(err)
	}
	got := byField(out["Contact"], "Id")
	if len(got) != 2 || got[binned]["IsDeleted"] != true || got[binned]["Email"] != "binned@example.nl" || got[live]["IsDeleted"] != false {
		t.Errorf("export %v", out)
	}
}

func TestParseFailedResults(t *testing.T) {
	id := "003000000000001AAA"
	got, err := parseFailedResults([]byte("\"sf__Id\",\"sf__Error\",Id\n" + id + ",ENTITY_IS_DELETED:entity is deleted:--,\"" + id + "\"\n" +
		",MALFORMED_ID:Contact ID: id value of incorrect type: 003000000000002AAA:Id,003000000000002AAA\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]recordError{
		id:                   {StatusCode: "ENTITY_IS_DELETED", Message: "entity is deleted"},
		"003000000000002AAA": {StatusCode: "MALFORMED_ID", Message: "Contact ID: id value of incorrect type: 003000000000002AAA", Fields: []string{"Id"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{"", "sf__Id,Id\nx,y\n", "sf__Id,sf__Error,Id\n,E:m:--,\n", "sf__Id,sf__Error\n\"x"} {
		if _, err := parseFailedResults([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if re := parseBulkError("no colon at all"); re.StatusCode != "UNKNOWN_ERROR" {
		t.Errorf("%+v", re)
	}
}

func TestClassifyFault(t *testing.T) {
	fault := func(code, msg string) []byte {
		return []byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>` + code +
			`</faultcode><faultstring>` + msg + `</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	}
	for _, c := range []struct {
		status int
		body   []byte
		kind   crm.ErrorKind
		code   string
	}{
		{500, fault("sf:INVALID_SESSION_ID", "INVALID_SESSION_ID: Invalid Session ID"), crm.Transient, "INVALID_SESSION_ID"},
		{500, fault("sf:REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."), crm.BudgetExhausted, "REQUEST_LIMIT_EXCEEDED"},
		{500, fault("sf:REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: ConcurrentPerOrgLongTxn Limit exceeded."), crm.Concurrency, "REQUEST_LIMIT_EXCEEDED"},
		{500, fault("sf:INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS: no"), crm.Permanent, "INSUFFICIENT_ACCESS"},
		{500, fault("soapenv:Client", "No operation available"), crm.Permanent, "SOAP_CLIENT_FAULT"},
		{500, fault("sf:UNKNOWN_EXCEPTION", "boom"), crm.Transient, "UNKNOWN_EXCEPTION"},
		{503, fault("sf:SERVER_UNAVAILABLE", "later"), crm.Transient, "SERVER_UNAVAILABLE"},
		{500, []byte("<html>oops</html>"), crm.Transient, "HTTP_500"},
		{502, nil, crm.Transient, "HTTP_502"},
	} {
		e := classifyFault(c.status, c.body)
		if e.Kind != c.kind || e.Code != c.code {
			t.Errorf("%d %s: %+v", c.status, c.body, e)
		}
	}
}

func TestParseSOAPResults(t *testing.T) {
	body := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><emptyRecycleBinResponse>` +
		`<result><id>003000000000001AAA</id><success>true</success></result>` +
		`<result><errors><message>insufficient access rights on object id</message><statusCode>INSUFFICIENT_ACCESS_OR_READONLY</statusCode></errors><id xsi:nil="true"/><success>false</success></result>` +
		`</emptyRecycleBinResponse></soapenv:Body></soapenv:Envelope>`
	res, err := parseSOAPResults([]byte(body), "emptyRecycleBinResponse")
	if err != nil || len(res) != 2 || res[0].Err != nil || res[1].Err == nil || res[1].Err.Code != "INSUFFICIENT_ACCESS_OR_READONLY" || res[1].Err.Kind != crm.Permanent {
		t.Fatalf("%+v %v", res, err)
	}
	if strings.Contains(res[1].Err.Message, "object id") {
		t.Errorf("the message quotes Salesforce: %q", res[1].Err.Message)
	}
	if _, err := parseSOAPResults([]byte(body), "undeleteResponse"); err == nil {
		t.Error("the wrong response element was accepted")
	}
}

// asCRMError is errors.As for *crm.Error.
func asCRMError(err error, target **crm.Error) bool {
	e, ok := err.(*crm.Error)
	if ok {
		*target = e
	}
	return ok
}

// FuzzParseFailedResults checks that a Bulk API failedResults CSV never
// panics the parser and that every row it accepts names a record.
func FuzzParseFailedResults(f *testing.F) {
	f.Add([]byte("\"sf__Id\",\"sf__Error\",Id\n003000000000001AAA,ENTITY_IS_DELETED:entity is deleted:--,003000000000001AAA\n"))
	f.Add([]byte("sf__Error,Id\nA:b:c,d\n"))
	f.Add([]byte("\ufeffsf__Id,sf__Error\n\"x\"\"y\",:::\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseFailedResults(body)
		if err != nil {
			return
		}
		for id, re := range got {
			if !isSFID(id) || !isAPIName(re.StatusCode) {
				t.Fatalf("accepted %q: %+v", id, re)
			}
		}
	})
}

// FuzzSOAPAnswers checks that SOAP answers and faults never panic the
// client's parsers and that a fault always classifies.
func FuzzSOAPAnswers(f *testing.F) {
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><emptyRecycleBinResponse><result><id>a</id><success>true</success></result></emptyRecycleBinResponse></soapenv:Body></soapenv:Envelope>`), 200)
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:X</faultcode><faultstring>X: y</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`), 500)
	f.Add([]byte("<a>"), 503)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		_, _ = parseSOAPResults(body, "emptyRecycleBinResponse")
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		e := classifyFault(status, body)
		if e == nil || e.Kind == "" || e.Code == "" || strings.ContainsAny(e.Message, "<>") {
			t.Fatalf("classifyFault(%d, %q) = %+v", status, body, e)
		}
	})
}
