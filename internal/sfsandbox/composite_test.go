package sfsandbox

import (
	"strings"
	"testing"
)

type compositeReply struct {
	CompositeResponse []struct {
		Body           any
		HTTPHeaders    map[string]string `json:"httpHeaders"`
		HTTPStatusCode int               `json:"httpStatusCode"`
		ReferenceID    string            `json:"referenceId"`
	}
}

func TestComposite(t *testing.T) {
	e := newEnv(t, Options{})
	body := map[string]any{"allOrNone": true, "compositeRequest": []any{
		map[string]any{"method": "PATCH", "url": v + "/sobjects/Contact/webcaresync_Id__c/c-1", "referenceId": "contact", "body": map[string]any{"LastName": "Mulder"}},
		map[string]any{"method": "PATCH", "url": v + "/sobjects/SocialPersona/webcaresync_Id__c/p-1", "referenceId": "persona", "body": map[string]any{"Name": "mulder", "Provider": "Twitter", "ParentId": "@{contact.id}"}},
		map[string]any{"method": "POST", "url": v + "/sobjects/Case", "referenceId": "case", "body": map[string]any{"Subject": "DM", "ContactId": "@{contact.id}"}},
		map[string]any{"method": "GET", "url": v + "/query?q=" + q("SELECT Id, CaseNumber FROM Case"), "referenceId": "cases"},
		map[string]any{"method": "POST", "url": v + "/sobjects/SocialPost", "referenceId": "post", "body": map[string]any{"Name": "hi", "ParentId": "@{cases.records[0].Id}", "PersonaId": "@{persona.id}"}},
		map[string]any{"method": "GET", "url": v + "/sobjects/Case/@{case.id}?fields=IsClosed,Status", "referenceId": "caseState"},
	}}
	r := e.do("POST", v+"/composite", body)
	e.expect(r, 200, "")
	var res compositeReply
	r.json(t, &res)
	codes := []int{}
	for _, c := range res.CompositeResponse {
		codes = append(codes, c.HTTPStatusCode)
	}
	if len(codes) != 6 || codes[0] != 201 || codes[1] != 201 || codes[2] != 201 || codes[3] != 200 || codes[4] != 201 || codes[5] != 200 {
		t.Fatalf("codes %v: %s", codes, r.body)
	}
	caseID := res.CompositeResponse[2].Body.(map[string]any)["id"].(string)
	if res.CompositeResponse[2].HTTPHeaders["Location"] != v+"/sobjects/Case/"+caseID {
		t.Errorf("Location %v", res.CompositeResponse[2].HTTPHeaders)
	}
	posts := e.sb.Records("SocialPost")
	if len(posts) != 1 || posts[0]["ParentId"] != caseID || !strings.HasPrefix(posts[0]["PersonaId"].(string), "0SP") {
		t.Fatalf("post %v", posts)
	}
	if e.sb.Calls()["POST /services/data/vXX.X/composite"] != 1 {
		t.Errorf("calls %v", e.sb.Calls())
	}

	// allOrNone: a failing subrequest rolls back the ones before it.
	body = map[string]any{"allOrNone": true, "compositeRequest": []any{
		map[string]any{"method": "POST", "url": v + "/sobjects/Account", "referenceId": "acc", "body": map[string]any{"Name": "Kept?"}},
		map[string]any{"method": "POST", "url": v + "/sobjects/SocialPost", "referenceId": "bad", "body": map[string]any{"Name": "x", "Provider": "Fax"}},
		map[string]any{"method": "POST", "url": v + "/sobjects/Account", "referenceId": "later", "body": map[string]any{"Name": "Never"}},
	}}
	r = e.do("POST", v+"/composite", body)
	e.expect(r, 200, `{"compositeResponse":[`+
		`{"body":[{"message":"The transaction was rolled back since another operation in the same transaction failed.","errorCode":"PROCESSING_HALTED"}],"httpHeaders":{},"httpStatusCode":400,"referenceId":"acc"},`+
		`{"body":[{"message":"Social Network: bad value for restricted picklist field: Fax","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Provider"]}],"httpHeaders":{},"httpStatusCode":400,"referenceId":"bad"},`+
		`{"body":[{"message":"The transaction was rolled back since another operation in the same transaction failed.","errorCode":"PROCESSING_HALTED"}],"httpHeaders":{},"httpStatusCode":400,"referenceId":"later"}]}`)
	if n := len(e.sb.Records("Account")); n != 0 {
		t.Fatalf("allOrNone composite left %d accounts", n)
	}

	// Without allOrNone, later subrequests run and a broken reference fails.
	body["allOrNone"] = false
	reqs := body["compositeRequest"].([]any)
	reqs[2] = map[string]any{"method": "POST", "url": v + "/sobjects/Task", "referenceId": "later", "body": map[string]any{"WhatId": "@{bad.id}"}}
	r = e.do("POST", v+"/composite", body)
	r.json(t, &res)
	if res.CompositeResponse[0].HTTPStatusCode != 201 || res.CompositeResponse[1].HTTPStatusCode != 400 || res.CompositeResponse[2].HTTPStatusCode != 400 ||
		!strings.Contains(r.body, "Invalid reference specified. No value for bad.id found in bad.") {
		t.Fatalf("partial composite %s", r.body)
	}
	if n := len(e.sb.Records("Account")); n != 1 {
		t.Fatalf("partial composite kept %d accounts, want 1", n)
	}

	var many []any
	for i := 0; i < 26; i++ {
		many = append(many, map[string]any{"method": "GET", "url": v + "/limits", "referenceId": "r" + strings.Repeat("x", i)})
	}
	e.expect(e.do("POST", v+"/composite", map[string]any{"compositeRequest": many}), 400,
		`[{"message":"Exceeded max limit of subrequests: 25","errorCode":"LIMIT_EXCEEDED"}]`)
}

func TestCompositeWithCollection(t *testing.T) {
	e := newEnv(t, Options{})
	body := map[string]any{"allOrNone": true, "compositeRequest": []any{
		map[string]any{"method": "POST", "url": v + "/composite/sobjects", "referenceId": "coll", "body": map[string]any{"allOrNone": false, "records": []any{
			map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "ok"},
			map[string]any{"attributes": map[string]any{"type": "Account"}},
		}}},
	}}
	r := e.do("POST", v+"/composite", body)
	e.expect(r, 200, "")
	// The composite's allOrNone overrides the collection's: nothing is kept.
	if !strings.Contains(r.body, "ALL_OR_NONE_OPERATION_ROLLED_BACK") || len(e.sb.Records("Account")) != 0 {
		t.Fatalf("%s", r.body)
	}
}
