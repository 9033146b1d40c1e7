package sfsandbox

import (
	"fmt"
	"strings"
	"testing"
)

type queryResult struct {
	TotalSize      int
	Done           bool
	NextRecordsURL string
	Records        []map[string]any
}

func (e *env) query(soql string, hdr ...string) queryResult {
	e.t.Helper()
	r := e.do("GET", v+"/query?q="+q(soql), nil, hdr...)
	e.expect(r, 200, "")
	var out queryResult
	r.json(e.t, &out)
	return out
}

func names(recs []map[string]any, field string) string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprint(r[field]))
	}
	return strings.Join(out, ",")
}

func seedPeople(e *env) (acc string, ids map[string]string) {
	acc = e.create("Account", map[string]any{"Name": "Acme"})
	ids = map[string]string{}
	for _, p := range []struct{ first, last, email, city string }{
		{"Anna", "de Vries", "anna@example.nl", "Utrecht"},
		{"Bram", "Jansen", "bram@example.nl", "Amsterdam"},
		{"Cas", "Bakker", "", "Utrecht"},
		{"Dirk", "Visser", "dirk@example.com", ""},
	} {
		f := map[string]any{"FirstName": p.first, "LastName": p.last, "MailingCity": p.city}
		if p.email != "" {
			f["Email"] = p.email
		}
		if p.first != "Dirk" {
			f["AccountId"] = acc
		}
		ids[p.first] = e.create("Contact", f)
	}
	return acc, ids
}

func TestSOQL(t *testing.T) {
	e := newEnv(t, Options{})
	_, ids := seedPeople(e)
	cases := []struct{ soql, want string }{
		{"SELECT FirstName FROM Contact ORDER BY FirstName", "Anna,Bram,Cas,Dirk"},
		{"select firstname from contact order by FirstName desc limit 2", "Dirk,Cas"},
		{"SELECT FirstName FROM Contact WHERE MailingCity = 'utrecht' ORDER BY FirstName", "Anna,Cas"},
		{"SELECT FirstName FROM Contact WHERE MailingCity != 'Utrecht' ORDER BY FirstName", "Bram,Dirk"},
		{"SELECT FirstName FROM Contact WHERE Email = null", "Cas"},
		{"SELECT FirstName FROM Contact WHERE Email != null AND MailingCity = 'Utrecht'", "Anna"},
		{"SELECT FirstName FROM Contact WHERE Email LIKE '%.nl' ORDER BY FirstName", "Anna,Bram"},
		{"SELECT FirstName FROM Contact WHERE Email NOT LIKE '%.nl' ORDER BY FirstName", "Cas,Dirk"},
		{"SELECT FirstName FROM Contact WHERE FirstName IN ('anna', 'Dirk') ORDER BY FirstName", "Anna,Dirk"},
		{"SELECT FirstName FROM Contact WHERE FirstName NOT IN ('Anna', 'Dirk') ORDER BY FirstName", "Bram,Cas"},
		{"SELECT FirstName FROM Contact WHERE (MailingCity = 'Amsterdam' OR Email = 'dirk@example.com') AND LastName != 'x' ORDER BY FirstName", "Bram,Dirk"},
		{"SELECT FirstName FROM Contact WHERE NOT (MailingCity = 'Utrecht') ORDER BY FirstName", "Bram,Dirk"},
		{"SELECT FirstName FROM Contact WHERE Account.Name = 'Acme' ORDER BY FirstName", "Anna,Bram,Cas"},
		{"SELECT FirstName FROM Contact WHERE Id = '" + ids["Bram"][:15] + "'", "Bram"},
		{"SELECT FirstName FROM Contact ORDER BY Email NULLS LAST, FirstName", "Anna,Bram,Dirk,Cas"},
		{"SELECT FirstName FROM Contact ORDER BY FirstName LIMIT 2 OFFSET 1", "Bram,Cas"},
		{"SELECT FirstName FROM Contact WHERE CreatedDate < 2000-01-01T00:00:00Z", ""},
		{"SELECT FirstName FROM Contact WHERE CreatedDate > 2000-01-01T00:00:00Z AND DoNotCall = false ORDER BY FirstName LIMIT 1", "Anna"},
	}
	for _, c := range cases {
		res := e.query(c.soql)
		if got := names(res.Records, "FirstName"); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.soql, got, c.want)
		}
	}
	res := e.query("SELECT COUNT() FROM Contact WHERE MailingCity = 'Utrecht'")
	if res.TotalSize != 2 || len(res.Records) != 0 || !res.Done {
		t.Errorf("COUNT(): %+v", res)
	}
	res = e.query("SELECT COUNT(Email) FROM Contact")
	if res.TotalSize != 1 || res.Records[0]["expr0"] != float64(3) {
		t.Errorf("COUNT(Email): %+v", res)
	}
}

func TestSOQLRelationshipFields(t *testing.T) {
	e := newEnv(t, Options{})
	_, ids := seedPeople(e)
	per := e.create("SocialPersona", map[string]any{"Name": "anna_nl", "Provider": "Twitter", "ParentId": ids["Anna"]})
	cs := e.create("Case", map[string]any{"Subject": "Help", "ContactId": ids["Anna"]})
	post := e.create("SocialPost", map[string]any{"Name": "hi", "PersonaId": per, "ParentId": cs, "WhoId": ids["Anna"]})
	r := e.do("GET", v+"/query?q="+q("SELECT Id, Persona.Name, Parent.Subject, Parent.Contact.Email, Who.Name FROM SocialPost"), nil)
	want := `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"SocialPost","url":"/services/data/v62.0/sobjects/SocialPost/` + post + `"},"Id":"` + post + `",` +
		`"Persona":{"attributes":{"type":"SocialPersona","url":"/services/data/v62.0/sobjects/SocialPersona/` + per + `"},"Name":"anna_nl"},` +
		`"Parent":{"attributes":{"type":"Case","url":"/services/data/v62.0/sobjects/Case/` + cs + `"},"Subject":"Help","Contact":{"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/` + ids["Anna"] + `"},"Email":"anna@example.nl"}},` +
		`"Who":{"attributes":{"type":"Name","url":"/services/data/v62.0/sobjects/Contact/` + ids["Anna"] + `"},"Name":"Anna de Vries"}}]}`
	e.expect(r, 200, want)
	// Polymorphic Parent on SocialPersona; a null parent renders as null.
	res := e.query("SELECT Parent.Name, Parent.Type FROM SocialPersona")
	p := res.Records[0]["Parent"].(map[string]any)
	if p["Name"] != "Anna de Vries" || p["Type"] != "Contact" {
		t.Errorf("persona parent %v", p)
	}
	res = e.query("SELECT FirstName, Account.Name FROM Contact WHERE FirstName = 'Dirk'")
	if acc, ok := res.Records[0]["Account"]; !ok || acc != nil {
		t.Errorf("null parent rendered as %v", res.Records[0])
	}
}

func TestSOQLErrors(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct{ soql, want string }{
		{"SELECT Id FROMM Contact",
			`[{"message":"\nSELECT Id FROMM Contact\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FROMM'","errorCode":"MALFORMED_QUERY"}]`},
		{"SELECT Foo FROM Contact",
			`[{"message":"\nSELECT Foo FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.","errorCode":"INVALID_FIELD"}]`},
		{"SELECT Id FROM Lead",
			`[{"message":"\nSELECT Id FROM Lead\n               ^\nERROR at Row:1:Column:16\nsObject type 'Lead' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.","errorCode":"INVALID_TYPE"}]`},
		{"SELECT Id FROM Contact WHERE Email = 'a' AND LastName = 'b' OR FirstName = 'c'",
			`[{"message":"\nSELECT Id FROM Contact WHERE Email = 'a' AND LastName = 'b' OR FirstName = 'c'\n                                                            ^\nERROR at Row:1:Column:61\nunexpected token: 'OR'","errorCode":"MALFORMED_QUERY"}]`},
		{"SELECT Id FROM Contact WHERE Id = 'abc'",
			`[{"message":"\nSELECT Id FROM Contact WHERE Id = 'abc'\n                                  ^\nERROR at Row:1:Column:35\ninvalid ID field: abc","errorCode":"INVALID_QUERY_FILTER_OPERATOR"}]`},
		{"SELECT Id FROM Contact WHERE DoNotCall = 'true'",
			`[{"message":"\nSELECT Id FROM Contact WHERE DoNotCall = 'true'\n                                         ^\nERROR at Row:1:Column:42\nvalue of filter criterion for field 'DoNotCall' must be of type boolean and should not be enclosed in quotes","errorCode":"INVALID_FIELD"}]`},
		{"SELECT Id FROM Contact WHERE Description = 'x'",
			`[{"message":"\nSELECT Id FROM Contact WHERE Description = 'x'\n                             ^\nERROR at Row:1:Column:30\nfield 'Description' can not be filtered in a query call","errorCode":"INVALID_FIELD"}]`},
		{"SELECT Id, Nope.Name FROM Contact",
			`[{"message":"\nSELECT Id, Nope.Name FROM Contact\n           ^\nERROR at Row:1:Column:12\nDidn't understand relationship 'Nope' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.","errorCode":"INVALID_FIELD"}]`},
		{"SELECT Id FROM Contact WHERE LastName = 'x",
			`[{"message":"\nSELECT Id FROM Contact WHERE LastName = 'x\n                                        ^\nERROR at Row:1:Column:41\nline 1:42 mismatched character '<EOF>' expecting '''","errorCode":"MALFORMED_QUERY"}]`},
		{"SELECT Id FROM Contact LIMIT",
			`[{"message":"\nSELECT Id FROM Contact LIMIT\n                            ^\nERROR at Row:1:Column:29\nunexpected token: '<EOF>'","errorCode":"MALFORMED_QUERY"}]`},
	}
	for _, c := range cases {
		e.expect(e.do("GET", v+"/query?q="+q(c.soql), nil), 400, c.want)
	}
	e.expect(e.do("GET", v+"/query", nil), 400, `[{"message":"A query string has to be specified","errorCode":"MALFORMED_QUERY"}]`)
	e.expect(e.do("GET", v+"/query/01gbogus-2000", nil), 400, `[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]`)
}

func TestQueryPaging(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 450; i++ {
		if _, err := e.sb.Seed("Contact", map[string]any{"LastName": fmt.Sprintf("P%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	res := e.query("SELECT LastName FROM Contact ORDER BY LastName", "Sforce-Query-Options", "batchSize=200")
	if res.TotalSize != 450 || res.Done || len(res.Records) != 200 || !strings.HasPrefix(res.NextRecordsURL, "/services/data/v62.0/query/01g") || !strings.HasSuffix(res.NextRecordsURL, "-200") {
		t.Fatalf("first page: total %d done %v n %d next %q", res.TotalSize, res.Done, len(res.Records), res.NextRecordsURL)
	}
	var all []map[string]any
	all = append(all, res.Records...)
	for !res.Done {
		r := e.do("GET", res.NextRecordsURL, nil)
		e.expect(r, 200, "")
		res = queryResult{}
		r.json(t, &res)
		all = append(all, res.Records...)
	}
	if len(all) != 450 || all[0]["LastName"] != "P000" || all[449]["LastName"] != "P449" {
		t.Fatalf("paged %d records", len(all))
	}
	// The default batch is 2000; batchSize below 200 is raised to 200.
	if res := e.query("SELECT Id FROM Contact"); !res.Done || len(res.Records) != 450 {
		t.Errorf("default batch: %d done %v", len(res.Records), res.Done)
	}
	if res := e.query("SELECT Id FROM Contact", "Sforce-Query-Options", "batchSize=10"); len(res.Records) != 200 {
		t.Errorf("batchSize=10 gave %d", len(res.Records))
	}
}

func TestQueryAllIncludesDeleted(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.create("Contact", map[string]any{"LastName": "Gone"})
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+id, nil), 204, "")
	if res := e.query("SELECT Id FROM Contact"); res.TotalSize != 0 {
		t.Errorf("query sees deleted record")
	}
	r := e.do("GET", v+"/queryAll?q="+q("SELECT Id, IsDeleted FROM Contact"), nil)
	e.expect(r, 200, "")
	if !strings.Contains(r.body, `"IsDeleted":true`) {
		t.Errorf("queryAll %s", r.body)
	}
}

func TestSOSL(t *testing.T) {
	e := newEnv(t, Options{})
	_, ids := seedPeople(e)
	e.create("Contact", map[string]any{"LastName": "Phone", "MobilePhone": "+31 6 1234 5678"})
	search := func(sosl string) []map[string]any {
		r := e.do("GET", v+"/search?q="+q(sosl), nil)
		e.expect(r, 200, "")
		var out struct{ SearchRecords []map[string]any }
		r.json(t, &out)
		return out.SearchRecords
	}
	got := search("FIND {anna@example.nl} IN EMAIL FIELDS RETURNING Contact(Id, Name)")
	if len(got) != 1 || got[0]["Id"] != ids["Anna"] || got[0]["Name"] != "Anna de Vries" {
		t.Errorf("email search %v", got)
	}
	got = search("FIND {Utrecht} IN ALL FIELDS RETURNING Contact(FirstName WHERE FirstName != 'Cas')")
	if names(got, "FirstName") != "Anna" {
		t.Errorf("where in returning: %v", got)
	}
	got = search("FIND {+31612345678} IN PHONE FIELDS RETURNING Contact")
	if len(got) != 1 || len(got[0]) != 2 {
		t.Errorf("phone search %v", got)
	}
	got = search("FIND {Jans*}")
	if len(got) != 1 || got[0]["Id"] != ids["Bram"] {
		t.Errorf("wildcard search %v", got)
	}
	e.expect(e.do("GET", v+"/search?q="+q("FIND {a}"), nil), 400, `[{"message":"search term must be longer than one character","errorCode":"MALFORMED_SEARCH"}]`)
	e.expect(e.do("GET", v+"/search?q="+q("FIND {anna} RETURNING Lead"), nil), 400, "")
}
