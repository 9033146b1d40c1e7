package sfsandbox

import (
	"strings"
	"testing"
)

func TestVersions(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("GET", "/services/data/", nil)
	e.expect(r, 200, "")
	var versions []struct{ Label, URL, Version string }
	r.json(t, &versions)
	have := map[string]string{}
	for _, x := range versions {
		have[x.Version] = x.URL
	}
	for _, want := range []string{"58.0", "59.0", "60.0", "61.0", "62.0"} {
		if have[want] != "/services/data/v"+want {
			t.Errorf("version %s missing: %v", want, have)
		}
	}
	if versions[len(versions)-1].Label != "Winter '25" {
		t.Errorf("label of v62.0 = %q", versions[len(versions)-1].Label)
	}
	e.expect(e.do("GET", "/services/data/v20.0/sobjects", nil), 410, "")
	e.expect(e.do("GET", "/services/data/v99.0/sobjects", nil), 404,
		`[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)
	e.expect(e.do("GET", "/services/data/v58.0/limits", nil), 200, "")
}

func TestIDsUseRealKeyPrefixes(t *testing.T) {
	e := newEnv(t, Options{})
	acc := e.create("Account", map[string]any{"Name": "Acme"})
	con := e.create("Contact", map[string]any{"LastName": "Jansen", "AccountId": acc})
	ind := e.create("Individual", map[string]any{"LastName": "Jansen"})
	cs := e.create("Case", map[string]any{"Subject": "x", "ContactId": con})
	task := e.create("Task", map[string]any{"Subject": "Call", "WhoId": con})
	per := e.create("SocialPersona", map[string]any{"Name": "jan", "Provider": "Twitter", "ParentId": con})
	post := e.create("SocialPost", map[string]any{"Name": "hi", "PersonaId": per, "ParentId": cs})
	for id, prefix := range map[string]string{acc: "001", con: "003", ind: "0PK", cs: "500", task: "00T", per: "0SP", post: "0ST"} {
		if len(id) != 18 || !strings.HasPrefix(id, prefix) {
			t.Errorf("id %q: want 18 characters with prefix %s", id, prefix)
		}
		n, ok := normalizeID(id[:15])
		if !ok || n != id {
			t.Errorf("15-character form of %s normalises to %s", id, n)
		}
		if lower, ok := normalizeID(strings.ToLower(id)); !ok || lower != id {
			t.Errorf("lower-cased 18-character %s normalises to %s", id, lower)
		}
	}
	// A 15-character ID works in the URL too.
	e.expect(e.do("GET", v+"/sobjects/Contact/"+con[:15], nil), 200, "")
}

func TestCaseSafeSuffixMatchesSalesforce(t *testing.T) {
	// Salesforce's documented example: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
	if got := caseSafeSuffix("001A0000006Vm9r"); got != "IAC" {
		t.Fatalf("suffix = %s, want IAC", got)
	}
}

func TestCRUD(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", v+"/sobjects/Contact", map[string]any{"FirstName": "Anna", "LastName": "de Vries", "Email": "anna@example.nl"})
	e.expect(r, 201, "")
	var created map[string]any
	r.json(t, &created)
	id := created["id"].(string)
	if created["success"] != true || len(created["errors"].([]any)) != 0 {
		t.Fatalf("create result %s", r.body)
	}
	if !strings.HasPrefix(r.body, `{"id":"`+id+`","success":true,"errors":[]}`) {
		t.Fatalf("create body %s", r.body)
	}

	r = e.do("GET", v+"/sobjects/Contact/"+id, nil)
	e.expect(r, 200, "")
	if !strings.HasPrefix(r.body, `{"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/`+id+`"},"Id":"`+id+`"`) {
		t.Fatalf("retrieve body %s", r.body)
	}
	var rec map[string]any
	r.json(t, &rec)
	if rec["Name"] != "Anna de Vries" || rec["OwnerId"] != sandboxUserID || rec["IsDeleted"] != false {
		t.Fatalf("record %v", rec)
	}

	r = e.do("GET", v+"/sobjects/Contact/"+id+"?fields=LastName,Email", nil)
	e.expect(r, 200, `{"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/`+id+`"},"LastName":"de Vries","Email":"anna@example.nl"}`)

	e.expect(e.do("PATCH", v+"/sobjects/Contact/"+id, map[string]any{"LastName": "Bakker"}), 204, "")
	r = e.do("GET", v+"/sobjects/Contact/"+id+"?fields=Name", nil)
	e.expect(r, 200, `{"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/`+id+`"},"Name":"Anna Bakker"}`)

	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+id, nil), 204, "")
	e.expect(e.do("GET", v+"/sobjects/Contact/"+id, nil), 404, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+id, nil), 404, `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`)
	e.expect(e.do("PATCH", v+"/sobjects/Contact/"+id, map[string]any{"LastName": "X"}), 404, `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`)

	e.expect(e.do("GET", v+"/sobjects/Contact/nonsense", nil), 404,
		`[{"message":"Provided external ID field does not exist or is not accessible: nonsense","errorCode":"NOT_FOUND"}]`)
	acc := e.create("Account", map[string]any{"Name": "Acme"})
	e.expect(e.do("GET", v+"/sobjects/Contact/"+acc, nil), 400,
		`[{"message":"Contact ID: id value of incorrect type: `+acc+`","errorCode":"MALFORMED_ID","fields":["Id"]}]`)
	e.expect(e.do("GET", v+"/sobjects/Contact/003000000000001AAA", nil), 404, "")
	e.expect(e.do("GET", v+"/sobjects/Lead", nil), 404, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)
	e.expect(e.do("PUT", v+"/sobjects/Contact/"+acc, nil), 405,
		`[{"message":"HTTP Method 'PUT' not allowed. Allowed are GET,PATCH,DELETE","errorCode":"METHOD_NOT_ALLOWED"}]`)
	e.expect(e.do("POST", v+"/sobjects/Contact", `{"LastName": `), 400, "")
}

func TestDescribe(t *testing.T) {
	e := newEnv(t, Options{})
	type field struct {
		Name               string
		Type               string
		Nillable           bool
		Createable         bool
		Updateable         bool
		ExternalID         bool `json:"externalId"`
		IDLookup           bool `json:"idLookup"`
		Unique             bool
		Custom             bool
		ReferenceTo        []string
		RelationshipName   *string
		RestrictedPicklist bool
		PicklistValues     []struct{ Value string }
	}
	get := func(object string) (map[string]any, map[string]field) {
		r := e.do("GET", v+"/sobjects/"+object+"/describe", nil)
		e.expect(r, 200, "")
		var d struct {
			Name      string
			KeyPrefix string
			Fields    []field
		}
		r.json(t, &d)
		m := map[string]field{}
		for _, f := range d.Fields {
			m[f.Name] = f
		}
		return map[string]any{"name": d.Name, "keyPrefix": d.KeyPrefix}, m
	}
	info, persona := get("SocialPersona")
	if info["keyPrefix"] != "0SP" {
		t.Errorf("SocialPersona keyPrefix %v", info["keyPrefix"])
	}
	p := persona["ParentId"]
	if p.Nillable || p.Type != "reference" || len(p.ReferenceTo) < 2 || p.RelationshipName == nil || *p.RelationshipName != "Parent" {
		t.Errorf("SocialPersona.ParentId %+v", p)
	}
	if f := persona["Name"]; f.Nillable || !f.Createable {
		t.Errorf("SocialPersona.Name %+v", f)
	}
	if f := persona["webcaresync_Id__c"]; !f.ExternalID || !f.IDLookup || !f.Unique || !f.Custom {
		t.Errorf("custom field %+v", f)
	}
	_, post := get("SocialPost")
	prov := post["Provider"]
	if !prov.RestrictedPicklist || !prov.Createable || prov.Updateable || len(prov.PicklistValues) == 0 {
		t.Errorf("SocialPost.Provider %+v", prov)
	}
	mt := post["MessageType"]
	if !mt.RestrictedPicklist || !mt.Updateable {
		t.Errorf("SocialPost.MessageType %+v", mt)
	}
	if f := post["ReplyToId"]; len(f.ReferenceTo) != 1 || f.ReferenceTo[0] != "SocialPost" {
		t.Errorf("SocialPost.ReplyToId %+v", f)
	}
	_, contact := get("Contact")
	if f := contact["Email"]; !f.IDLookup || f.Type != "email" {
		t.Errorf("Contact.Email %+v", f)
	}
	if f := contact["IndividualId"]; f.ReferenceTo[0] != "Individual" {
		t.Errorf("Contact.IndividualId %+v", f)
	}
	r := e.do("GET", v+"/sobjects", nil)
	e.expect(r, 200, "")
	for _, name := range []string{"Account", "Contact", "Case", "Task", "Individual", "SocialPersona", "SocialPost"} {
		if !strings.Contains(r.body, `"name":"`+name+`"`) {
			t.Errorf("global describe lacks %s", name)
		}
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t, Options{})
	con := e.create("Contact", map[string]any{"LastName": "Visser"})
	cs := e.create("Case", map[string]any{"Subject": "help"})

	cases := []struct {
		name, method, path string
		body               any
		status             int
		want               string
	}{
		{"persona required", "POST", "/sobjects/SocialPersona", map[string]any{}, 400,
			`[{"message":"Required fields are missing: [Name, Provider, ParentId]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name","Provider","ParentId"]}]`},
		{"post requires name", "POST", "/sobjects/SocialPost", map[string]any{"Provider": "Twitter"}, 400,
			`[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]`},
		{"empty string is null", "POST", "/sobjects/Contact", map[string]any{"LastName": ""}, 400,
			`[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`},
		{"restricted picklist", "POST", "/sobjects/SocialPost", map[string]any{"Name": "x", "Provider": "Myspace"}, 400,
			`[{"message":"Social Network: bad value for restricted picklist field: Myspace","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Provider"]}]`},
		{"message type", "POST", "/sobjects/SocialPost", map[string]any{"Name": "x", "MessageType": "DM"}, 400,
			`[{"message":"Message Type: bad value for restricted picklist field: DM","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["MessageType"]}]`},
		{"unknown field", "POST", "/sobjects/Contact", map[string]any{"LastName": "x", "Shoe__c": 1}, 400,
			`[{"message":"No such column 'Shoe__c' on sobject of type Contact","errorCode":"INVALID_FIELD","fields":[]}]`},
		{"read-only field", "POST", "/sobjects/Contact", map[string]any{"LastName": "x", "Name": "y"}, 400,
			`[{"message":"Unable to create/update fields: Name. Please check the security settings of this field and verify that it is read/write for your profile or permission set.","errorCode":"INVALID_FIELD_FOR_INSERT_UPDATE","fields":["Name"]}]`},
		{"malformed reference", "POST", "/sobjects/Case", map[string]any{"ContactId": "abc"}, 400,
			`[{"message":"Contact ID: id value of incorrect type: abc","errorCode":"MALFORMED_ID","fields":["ContactId"]}]`},
		{"reference of wrong type", "POST", "/sobjects/Case", map[string]any{"ContactId": cs}, 400,
			`[{"message":"Contact ID: id value of incorrect type: ` + cs + `","errorCode":"FIELD_INTEGRITY_EXCEPTION","fields":["ContactId"]}]`},
		{"missing reference", "POST", "/sobjects/Task", map[string]any{"WhoId": "003" + idInstance + "ZZZZZZZZZ"}, 400,
			`[{"message":"invalid cross reference id","errorCode":"INVALID_CROSS_REFERENCE_KEY","fields":[]}]`},
		{"email", "POST", "/sobjects/Contact", map[string]any{"LastName": "x", "Email": "not-an-email"}, 400,
			`[{"message":"Email: invalid email address: not-an-email","errorCode":"INVALID_EMAIL_ADDRESS","fields":["Email"]}]`},
		{"too long", "POST", "/sobjects/Contact", map[string]any{"LastName": "x", "FirstName": strings.Repeat("a", 41)}, 400,
			`[{"message":"First Name: data value too large: ` + strings.Repeat("a", 41) + ` (max length=40)","errorCode":"STRING_TOO_LONG","fields":["FirstName"]}]`},
		{"boolean type", "POST", "/sobjects/Contact", map[string]any{"LastName": "x", "DoNotCall": "sure"}, 400,
			`[{"message":"Cannot deserialize instance of boolean from VALUE_STRING value sure or request may be missing a required field","errorCode":"JSON_PARSER_ERROR"}]`},
		{"id in insert", "POST", "/sobjects/Contact", map[string]any{"LastName": "x", "Id": con}, 400,
			`[{"message":"Record ID: cannot specify Id in an insert call","errorCode":"INVALID_FIELD_FOR_INSERT_UPDATE","fields":["Id"]}]`},
		{"null required on update", "PATCH", "/sobjects/Contact/" + con, map[string]any{"LastName": nil}, 400,
			`[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se := e.with(t)
			se.expect(se.do(c.method, v+c.path, c.body), c.status, c.want)
		})
	}

	// Provider is create-only on SocialPost and SocialPersona.
	per := e.create("SocialPersona", map[string]any{"Name": "visser", "Provider": "Twitter", "ParentId": con})
	post := e.create("SocialPost", map[string]any{"Name": "hello", "Provider": "Twitter", "MessageType": "Direct", "PersonaId": per, "ParentId": cs, "WhoId": con})
	e.expect(e.do("PATCH", v+"/sobjects/SocialPost/"+post, map[string]any{"Provider": "Facebook"}), 400,
		`[{"message":"Unable to create/update fields: Provider. Please check the security settings of this field and verify that it is read/write for your profile or permission set.","errorCode":"INVALID_FIELD_FOR_INSERT_UPDATE","fields":["Provider"]}]`)
	e.expect(e.do("PATCH", v+"/sobjects/SocialPersona/"+per, map[string]any{"ParentId": nil}), 400,
		`[{"message":"Required fields are missing: [ParentId]","errorCode":"REQUIRED_FIELD_MISSING","fields":["ParentId"]}]`)
	// ParentId is polymorphic: a persona may hang off an Account, a
	// Contact or a SocialPost, but not a Case.
	acc := e.create("Account", map[string]any{"Name": "Acme"})
	e.expect(e.do("PATCH", v+"/sobjects/SocialPersona/"+per, map[string]any{"ParentId": acc}), 204, "")
	e.expect(e.do("PATCH", v+"/sobjects/SocialPersona/"+per, map[string]any{"ParentId": post}), 204, "")
	e.expect(e.do("PATCH", v+"/sobjects/SocialPersona/"+per, map[string]any{"ParentId": cs}), 400,
		`[{"message":"Parent ID: id value of incorrect type: `+cs+`","errorCode":"FIELD_INTEGRITY_EXCEPTION","fields":["ParentId"]}]`)
	reply := e.create("SocialPost", map[string]any{"Name": "re", "ReplyToId": post, "MessageType": "Reply"})
	if reply == "" {
		t.Fatal("reply not created")
	}
	// A reference to a deleted record.
	e.expect(e.do("DELETE", v+"/sobjects/Case/"+cs, nil), 204, "")
	e.expect(e.do("PATCH", v+"/sobjects/SocialPost/"+post, map[string]any{"ParentId": cs}), 400,
		`[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`)
	// Contact.IndividualId must name an Individual.
	ind := e.create("Individual", map[string]any{"LastName": "Visser"})
	e.expect(e.do("PATCH", v+"/sobjects/Contact/"+con, map[string]any{"IndividualId": ind}), 204, "")
	e.expect(e.do("PATCH", v+"/sobjects/Contact/"+con, map[string]any{"IndividualId": con}), 400, "")
}

func TestUniqueCustomField(t *testing.T) {
	e := newEnv(t, Options{})
	first := e.create("Contact", map[string]any{"LastName": "A", "webcaresync_Id__c": "k1"})
	e.expect(e.do("POST", v+"/sobjects/Contact", map[string]any{"LastName": "B", "webcaresync_Id__c": "K1"}), 400,
		`[{"message":"duplicate value found: webcaresync_Id__c duplicates value on record with id: `+first+`","errorCode":"DUPLICATE_VALUE","fields":[]}]`)
}

func TestUpsert(t *testing.T) {
	e := newEnv(t, Options{})
	path := v + "/sobjects/SocialPersona/webcaresync_Id__c/x:123"
	con := e.create("Contact", map[string]any{"LastName": "Smit"})
	body := map[string]any{"Name": "smit", "Provider": "Twitter", "ParentId": con}
	r := e.do("PATCH", path, body)
	e.expect(r, 201, "")
	var res struct {
		ID      string
		Created bool
	}
	r.json(t, &res)
	if !res.Created || !strings.HasPrefix(res.ID, "0SP") {
		t.Fatalf("upsert create %s", r.body)
	}
	e.expect(r, 201, `{"id":"`+res.ID+`","success":true,"errors":[],"created":true}`)
	// Provider is create-only, so an update must leave it out.
	e.expect(e.do("PATCH", path, body), 400, "")
	e.expect(e.do("PATCH", path, map[string]any{"Name": "smit2"}), 200, `{"id":"`+res.ID+`","success":true,"errors":[],"created":false}`)

	// Legacy_Key__c is an external ID that is not unique: two matches.
	a1 := e.create("Account", map[string]any{"Name": "A", "Legacy_Key__c": "dup"})
	a2 := e.create("Account", map[string]any{"Name": "B", "Legacy_Key__c": "dup"})
	e.expect(e.do("PATCH", v+"/sobjects/Account/Legacy_Key__c/dup", map[string]any{"Name": "C"}), 300,
		`["/services/data/v62.0/sobjects/Account/`+a1+`","/services/data/v62.0/sobjects/Account/`+a2+`"]`)
	e.expect(e.do("GET", v+"/sobjects/Account/Legacy_Key__c/dup", nil), 300, "")

	e.expect(e.do("PATCH", v+"/sobjects/Account/Nope__c/1", map[string]any{"Name": "C"}), 404,
		`[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)
	e.expect(e.do("PATCH", v+"/sobjects/Account/Name/x", map[string]any{"Name": "C"}), 404,
		`[{"message":"Provided external ID field does not exist or is not accessible: Name","errorCode":"NOT_FOUND"}]`)
	// updateOnly does not create.
	e.expect(e.do("PATCH", v+"/sobjects/Account/Legacy_Key__c/none?updateOnly=true", map[string]any{"Name": "C"}), 404, "")
	// Before API 46.0 the created flag is absent.
	r = e.do("PATCH", "/services/data/v45.0/sobjects/Account/Legacy_Key__c/old", map[string]any{"Name": "Old"})
	e.expect(r, 201, "")
	if strings.Contains(r.body, "created") {
		t.Errorf("v45.0 upsert body has created: %s", r.body)
	}
	// Retrieve and delete by external ID.
	r = e.do("GET", v+"/sobjects/SocialPersona/webcaresync_Id__c/x:123", nil)
	e.expect(r, 200, "")
	if !strings.Contains(r.body, `"Name":"smit2"`) {
		t.Errorf("retrieve by external ID %s", r.body)
	}
	e.expect(e.do("DELETE", v+"/sobjects/SocialPersona/webcaresync_Id__c/x:123", nil), 204, "")
	e.expect(e.do("GET", v+"/sobjects/SocialPersona/webcaresync_Id__c/x:123", nil), 404, "")
}

func TestForeignKeyByExternalID(t *testing.T) {
	e := newEnv(t, Options{})
	con := e.create("Contact", map[string]any{"LastName": "K", "webcaresync_Id__c": "c1"})
	id := e.create("SocialPersona", map[string]any{"Name": "k", "Provider": "Twitter",
		"Parent": map[string]any{"attributes": map[string]any{"type": "Contact"}, "webcaresync_Id__c": "c1"}})
	for _, rec := range e.sb.Records("SocialPersona") {
		if rec["Id"] == id && rec["ParentId"] != con {
			t.Fatalf("ParentId %v, want %s", rec["ParentId"], con)
		}
	}
}
