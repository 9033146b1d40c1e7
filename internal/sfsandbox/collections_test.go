package sfsandbox

import (
	"fmt"
	"strings"
	"testing"
)

func TestCollectionCreate(t *testing.T) {
	e := newEnv(t, Options{})
	body := map[string]any{"allOrNone": false, "records": []any{
		map[string]any{"attributes": map[string]any{"type": "Contact"}, "LastName": "One"},
		map[string]any{"attributes": map[string]any{"type": "SocialPost"}, "Name": "bad", "MessageType": "Fax"},
		map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "Three"},
	}}
	r := e.do("POST", v+"/composite/sobjects", body)
	e.expect(r, 200, "")
	var res []map[string]any
	r.json(t, &res)
	if len(res) != 3 || res[0]["success"] != true || res[2]["success"] != true || !strings.HasPrefix(res[0]["id"].(string), "003") || !strings.HasPrefix(res[2]["id"].(string), "001") {
		t.Fatalf("results %s", r.body)
	}
	if !strings.Contains(r.body, `{"success":false,"errors":[{"statusCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","message":"Message Type: bad value for restricted picklist field: Fax","fields":["MessageType"]}]}`) {
		t.Fatalf("failed item %s", r.body)
	}

	// allOrNone: one bad record rolls back the others.
	body["allOrNone"] = true
	before := len(e.sb.Records("Contact"))
	r = e.do("POST", v+"/composite/sobjects", body)
	e.expect(r, 200, `[{"success":false,"errors":[{"statusCode":"ALL_OR_NONE_OPERATION_ROLLED_BACK","message":"Record rolled back because not all records were valid and the request was using AllOrNone header","fields":[]}]},`+
		`{"success":false,"errors":[{"statusCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","message":"Message Type: bad value for restricted picklist field: Fax","fields":["MessageType"]}]},`+
		`{"success":false,"errors":[{"statusCode":"ALL_OR_NONE_OPERATION_ROLLED_BACK","message":"Record rolled back because not all records were valid and the request was using AllOrNone header","fields":[]}]}]`)
	if after := len(e.sb.Records("Contact")); after != before {
		t.Fatalf("allOrNone kept records: %d -> %d", before, after)
	}

	var many []any
	for i := 0; i < 201; i++ {
		many = append(many, map[string]any{"attributes": map[string]any{"type": "Contact"}, "LastName": "x"})
	}
	e.expect(e.do("POST", v+"/composite/sobjects", map[string]any{"records": many}), 400,
		`[{"message":"record limit reached. cannot submit more than 200 records into this call","errorCode":"EXCEEDED_ID_LIMIT"}]`)
	r = e.do("POST", v+"/composite/sobjects", map[string]any{"records": many[:200]})
	e.expect(r, 200, "")
	if strings.Count(r.body, `"success":true`) != 200 {
		t.Fatal("200 records were not all created")
	}
}

func TestCollectionUpdateAndDelete(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.create("Contact", map[string]any{"LastName": "A"})
	b := e.create("Contact", map[string]any{"LastName": "B"})
	gone := e.create("Contact", map[string]any{"LastName": "C"})
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+gone, nil), 204, "")
	r := e.do("PATCH", v+"/composite/sobjects", map[string]any{"records": []any{
		map[string]any{"attributes": map[string]any{"type": "Contact"}, "id": a, "FirstName": "Ada"},
		map[string]any{"attributes": map[string]any{"type": "Contact"}, "Id": gone, "FirstName": "X"},
		map[string]any{"attributes": map[string]any{"type": "Contact"}, "FirstName": "NoID"},
		map[string]any{"attributes": map[string]any{"type": "Contact"}, "Id": b, "LastName": nil},
	}})
	e.expect(r, 200, `[{"id":"`+a+`","success":true,"errors":[]},`+
		`{"id":"`+gone+`","success":false,"errors":[{"statusCode":"ENTITY_IS_DELETED","message":"entity is deleted","fields":[]}]},`+
		`{"success":false,"errors":[{"statusCode":"MISSING_ARGUMENT","message":"Id not specified in an update call","fields":[]}]},`+
		`{"id":"`+b+`","success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}]`)

	r = e.do("DELETE", v+"/composite/sobjects?ids="+a+","+gone+",bogus&allOrNone=false", nil)
	e.expect(r, 200, `[{"id":"`+a+`","success":true,"errors":[]},`+
		`{"id":"`+gone+`","success":false,"errors":[{"statusCode":"ENTITY_IS_DELETED","message":"entity is deleted","fields":[]}]},`+
		`{"id":"bogus","success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"malformed id bogus","fields":[]}]}]`)
	// allOrNone delete rolls back the good one.
	r = e.do("DELETE", v+"/composite/sobjects?ids="+b+","+gone+"&allOrNone=true", nil)
	e.expect(r, 200, "")
	if !strings.Contains(r.body, "ALL_OR_NONE_OPERATION_ROLLED_BACK") || len(e.sb.Records("Contact")) != 1 {
		t.Fatalf("allOrNone delete: %s", r.body)
	}
}

func TestCollectionUpsert(t *testing.T) {
	e := newEnv(t, Options{})
	cs := e.create("Case", map[string]any{"Subject": "s"})
	rec := func(key, name string) map[string]any {
		return map[string]any{"attributes": map[string]any{"type": "SocialPost"}, "webcaresync_Id__c": key, "Name": name, "ParentId": cs}
	}
	r := e.do("PATCH", v+"/composite/sobjects/SocialPost/webcaresync_Id__c", map[string]any{"allOrNone": false, "records": []any{rec("m1", "one"), rec("m2", "two")}})
	e.expect(r, 200, "")
	var res []struct {
		ID      string
		Success bool
		Created bool
	}
	r.json(t, &res)
	if len(res) != 2 || !res[0].Created || !res[1].Created {
		t.Fatalf("first upsert %s", r.body)
	}
	r = e.do("PATCH", v+"/composite/sobjects/SocialPost/webcaresync_Id__c", map[string]any{"records": []any{rec("m2", "two again"), rec("m3", "three"), rec("m3", "dup"), map[string]any{"attributes": map[string]any{"type": "SocialPost"}, "Name": "nokey"}}})
	e.expect(r, 200, `[{"id":"`+res[1].ID+`","success":true,"errors":[],"created":false},`+
		`{"id":"`+fmt.Sprint(e.sb.Records("SocialPost")[2]["Id"])+`","success":true,"errors":[],"created":true},`+
		`{"success":false,"errors":[{"statusCode":"DUPLICATE_EXTERNAL_ID","message":"Duplicate external id specified: m3","fields":["webcaresync_Id__c"]}]},`+
		`{"success":false,"errors":[{"statusCode":"MISSING_ARGUMENT","message":"webcaresync_Id__c not specified","fields":["webcaresync_Id__c"]}]}]`)
	e.expect(e.do("PATCH", v+"/composite/sobjects/SocialPost/Nope__c", map[string]any{"records": []any{}}), 404, "")
}
