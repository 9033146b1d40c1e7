package sfsandbox

import (
	"testing"
)

var soqlSeeds = []string{
	"SELECT Id FROM Contact",
	"SELECT Id, Name, Account.Name FROM Contact WHERE Email = 'a@b.nl' OR Phone IN ('+31', '+32') ORDER BY Name DESC NULLS LAST LIMIT 10 OFFSET 5",
	"SELECT COUNT() FROM SocialPost WHERE (Provider = 'Twitter' AND MessageType != null) AND Name LIKE 'a\\%b%'",
	"SELECT COUNT(Id) FROM Case WHERE CreatedDate > 2024-01-01T00:00:00Z AND ActivityDate < 2024-01-01 AND IsClosed = false",
	"SELECT Id FROM Contact WHERE NOT Name LIKE 'x' AND CreatedDate = TODAY",
	"SELECT Id FROM Contact WHERE LastName = 'it\\'s'",
	"SELECT FROM", "'", "SELECT Id FROM Contact WHERE (((", "select id from contact where id = '\\u'",
}

// FuzzParseSOQL checks that the SOQL parser never panics and that errors
// always render.
func FuzzParseSOQL(f *testing.F) {
	for _, s := range soqlSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		parsed, err := parseSOQL(q)
		if err != nil {
			_ = err.render(q)
			return
		}
		if parsed.object == "" {
			t.Fatalf("parsed %q without an object", q)
		}
	})
}

// FuzzQuery runs fuzzed queries end to end against a small data set.
func FuzzQuery(f *testing.F) {
	for _, s := range soqlSeeds {
		f.Add(s)
	}
	sb, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	con, _ := sb.Seed("Contact", map[string]any{"LastName": "Fuzz", "Email": "f@example.nl"})
	_, _ = sb.Seed("SocialPersona", map[string]any{"Name": "fz", "Provider": "Twitter", "ParentId": con})
	f.Fuzz(func(t *testing.T, q string) {
		sb.st.mu.Lock()
		defer sb.st.mu.Unlock()
		tx := &txn{st: sb.st, now: nowUTC()}
		rows, total, ferr := sb.runQuery(tx, "v62.0", q, false)
		if ferr == nil && total < len(rows) {
			t.Fatalf("total %d < rows %d", total, len(rows))
		}
	})
}

// FuzzParseSOSL checks that the SOSL parser never panics.
func FuzzParseSOSL(f *testing.F) {
	for _, s := range []string{
		"FIND {anna@example.nl} IN EMAIL FIELDS RETURNING Contact(Id, Name WHERE LastName != null LIMIT 5), SocialPersona",
		"FIND {\"jan de\" OR piet*} LIMIT 10", "FIND {a\\}b}", "FIND", "FIND {", "find {xx} returning",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		parsed, err := parseSOSL(q)
		if err != nil {
			_ = err.render(q)
			return
		}
		for _, term := range parsed.terms {
			_ = termRegexp(term)
		}
	})
}

// FuzzParseIngestCSV checks that a Bulk API 2.0 upload never panics the
// parser, that a usable upload yields one ID per data row and an unusable
// one an error message, never both.
func FuzzParseIngestCSV(f *testing.F) {
	id := newID("003", 1)
	for _, s := range []string{"Id\n" + id + "\n", "Id\r\n" + id + "\r\n", "\"Id\"\n\"" + id + "\"\n", "Id,Name\nx,y\n", "", "Id\n\"", "\ufeffID\n" + id} {
		f.Add([]byte(s), "COMMA", "LF")
		f.Add([]byte(s), "PIPE", "CRLF")
	}
	f.Fuzz(func(t *testing.T, data []byte, delimiter, lineEnding string) {
		header, rows, msg := parseIngestCSV(data, delimiter, lineEnding, "hardDelete")
		if msg != "" {
			if header != nil || rows != nil {
				t.Fatalf("an error (%s) with %d rows", msg, len(rows))
			}
			return
		}
		if len(header) != 1 {
			t.Fatalf("header %q accepted", header)
		}
		for _, r := range rows {
			if len(r.values) != 1 {
				t.Fatalf("row %q of a one-column upload", r.values)
			}
		}
	})
}

// FuzzParseSOAP checks that any request body leaves the SOAP envelope
// parser with an error or one call, never a panic.
func FuzzParseSOAP(f *testing.F) {
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>t</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:emptyRecycleBin><urn:ids>003</urn:ids></urn:emptyRecycleBin></soapenv:Body></soapenv:Envelope>`))
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><a/><b/></soapenv:Body></soapenv:Envelope>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseSOAP(body)
		if err == nil && req.Operation.Local == "" {
			t.Fatalf("a call without a name from %q", body)
		}
	})
}
