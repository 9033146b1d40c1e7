package sfsandbox

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The SOAP partner API's emptyRecycleBin() and undelete(), as in
// https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_emptyrecyclebin.htm
// and sforce_api_calls_undelete.htm: POST /services/Soap/u/NN.0 with the
// OAuth access token as the SessionHeader's sessionId.

const (
	nsSOAPEnv  = "http://schemas.xmlsoap.org/soap/envelope/"
	nsPartner  = "urn:partner.soap.sforce.com"
	maxSOAPIDs = 200
	// maxSOAPBody bounds a SOAP request; 200 IDs take a few kilobytes.
	maxSOAPBody = 1 << 20
)

// soapRequest is a parsed SOAP envelope: the session and the call.
type soapRequest struct {
	SessionID string
	Operation xml.Name
	IDs       []string
}

// parseSOAP reads a SOAP 1.1 envelope with a SessionHeader and one call
// whose arguments are ids elements (emptyRecycleBin, undelete, delete,
// retrieve all have that shape).
func parseSOAP(body []byte) (soapRequest, error) {
	var env struct {
		XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
		Header  struct {
			SessionHeader struct {
				SessionID string `xml:"urn:partner.soap.sforce.com sessionId"`
			} `xml:"urn:partner.soap.sforce.com SessionHeader"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
		Body struct {
			Calls []struct {
				XMLName xml.Name
				IDs     []string `xml:"urn:partner.soap.sforce.com ids"`
			} `xml:",any"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	if err := dec.Decode(&env); err != nil {
		return soapRequest{}, errors.New("the request is not a SOAP 1.1 envelope")
	}
	if len(env.Body.Calls) != 1 {
		return soapRequest{}, errors.New("the SOAP body must hold exactly one call")
	}
	call := env.Body.Calls[0]
	out := soapRequest{SessionID: strings.TrimSpace(env.Header.SessionHeader.SessionID), Operation: call.XMLName}
	for _, id := range call.IDs {
		out.IDs = append(out.IDs, strings.TrimSpace(id))
	}
	return out, nil
}

// soapFault is a SOAP fault: faultcode (sf:CODE or soapenv:Client) and
// faultstring.
type soapFault struct {
	status int
	code   string // without prefix; "" for a client fault
	msg    string
}

func (s *Sandbox) writeSOAPFault(w http.ResponseWriter, f soapFault) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="` + nsSOAPEnv + `" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>`)
	if f.code == "" {
		b.WriteString("<faultcode>soapenv:Client</faultcode><faultstring>" + xmlText(f.msg) + "</faultstring>")
	} else {
		b.WriteString("<faultcode>sf:" + f.code + "</faultcode><faultstring>" + xmlText(f.code+": "+f.msg) + "</faultstring>")
		b.WriteString(`<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault"><sf:exceptionCode>` + f.code +
			"</sf:exceptionCode><sf:exceptionMessage>" + xmlText(f.msg) + "</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>")
	}
	b.WriteString("</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, b.String())
}

func xmlText(s string) string {
	var buf bytes.Buffer
	_ = xml.EscapeText(&buf, []byte(s))
	return buf.String()
}

// soapResult is one result of emptyRecycleBin() or undelete().
type soapResult struct {
	id  string
	err *fieldError
}

// serveSOAP runs one SOAP partner API call through the same gates as the
// REST API: outage, session, version, daily budget, concurrency, latency
// and injected failures.
func (s *Sandbox) serveSOAP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/services/Soap/u/")
	verSeg, _, _ := strings.Cut(rest, "/")
	endpoint := "POST /services/Soap/u/XX.X"
	if wait := s.outageRemaining(); wait > 0 {
		s.count(endpoint)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		s.writeSOAPFault(w, soapFault{http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again later."})
		return
	}
	if r.Method != http.MethodPost {
		s.count(r.Method + " /services/Soap/u/XX.X")
		s.writeSOAPFault(w, soapFault{http.StatusMethodNotAllowed, "", "the SOAP API takes POST requests only"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSOAPBody))
	if err != nil {
		s.count(endpoint)
		s.writeSOAPFault(w, soapFault{http.StatusRequestEntityTooLarge, "", "the request body is too large"})
		return
	}
	req, perr := parseSOAP(body)
	if perr != nil {
		s.count(endpoint)
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "", perr.Error()})
		return
	}
	s.count(endpoint + " " + req.Operation.Local)
	if !s.validToken(req.SessionID) {
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"})
		return
	}
	n, verr := strconv.ParseFloat(verSeg, 64)
	if verr != nil || n != float64(int(n)) || int(n) < minVersion || int(n) > maxVersion {
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL"})
		return
	}
	if !s.consume() {
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."})
		return
	}
	switch s.admit(r) {
	case refusedConcurrent:
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."})
		return
	case refusedGone:
		return
	case refusedInjected:
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "UNKNOWN_EXCEPTION", injectedFailure})
		return
	}
	defer s.release()
	if req.Operation.Space != nsPartner || (req.Operation.Local != "emptyRecycleBin" && req.Operation.Local != "undelete") {
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "", fmt.Sprintf("No operation available for request {%s}%s, please check the WSDL for the service.", req.Operation.Space, req.Operation.Local)})
		return
	}
	if len(req.IDs) > maxSOAPIDs {
		s.writeSOAPFault(w, soapFault{http.StatusInternalServerError, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"})
		return
	}
	var results []soapResult
	if req.Operation.Local == "emptyRecycleBin" {
		results = s.emptyRecycleBin(req.IDs)
	} else {
		results = s.undelete(req.IDs)
	}
	s.writeSOAPResults(w, req.Operation.Local+"Response", results)
}

// validToken reports whether token is a live session.
func (s *Sandbox) validToken(token string) bool {
	if token == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[token]
	return ok && time.Now().Before(exp)
}

// SetEmptyRecycleBin allows (true) or refuses (false) emptyRecycleBin():
// refused, every record fails with INSUFFICIENT_ACCESS_OR_READONLY, as
// for records in another user's Recycle Bin without "Modify All Data".
func (s *Sandbox) SetEmptyRecycleBin(allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noEmptyBin = !allowed
}

// emptyRecycleBin purges records from the Recycle Bin, with the records
// their deletes cascaded to. Each ID is its own operation.
func (s *Sandbox) emptyRecycleBin(ids []string) []soapResult {
	s.mu.Lock()
	denied := s.noEmptyBin
	s.mu.Unlock()
	tx, _, done := s.st.begin(context.Background())
	defer done()
	out := make([]soapResult, len(ids))
	for i, raw := range ids {
		id, ok := normalizeID(raw)
		if !ok {
			out[i] = soapResult{err: recErr(http.StatusBadRequest, "MALFORMED_ID", "malformed id "+raw)}
			continue
		}
		rec := tx.get(id)
		switch {
		case rec == nil:
			out[i] = soapResult{err: recErr(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")}
		case !rec.deleted():
			out[i] = soapResult{err: recErr(http.StatusBadRequest, "INVALID_ID_FIELD", "The record is not in the Recycle Bin")}
		case denied:
			out[i] = soapResult{err: recErr(http.StatusBadRequest, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")}
		default:
			s.purgeRecord(tx, rec)
			out[i] = soapResult{id: id}
		}
	}
	return out
}

// undelete restores records from the Recycle Bin, with the records their
// deletes cascaded to.
func (s *Sandbox) undelete(ids []string) []soapResult {
	tx, _, done := s.st.begin(context.Background())
	defer done()
	notInBin := func() *fieldError {
		return recErr(http.StatusBadRequest, "UNDELETE_FAILED", "Entity is not in the recycle bin")
	}
	out := make([]soapResult, len(ids))
	for i, raw := range ids {
		id, ok := normalizeID(raw)
		if !ok {
			out[i] = soapResult{err: recErr(http.StatusBadRequest, "MALFORMED_ID", "malformed id "+raw)}
			continue
		}
		rec := tx.get(id)
		if rec == nil || !rec.deleted() {
			out[i] = soapResult{err: notInBin()}
			continue
		}
		if p := tx.get(rec.CascadeOf); p != nil && p.deleted() {
			out[i] = soapResult{err: recErr(http.StatusBadRequest, "UNDELETE_FAILED", "Undelete the record this record was deleted with first")}
			continue
		}
		obj := s.object(rec.Object)
		live := rec.clone()
		live.Fields["IsDeleted"] = false
		if err := s.checkUnique(tx, obj, live, rec); err != nil {
			out[i] = soapResult{err: err}
			continue
		}
		s.undeleteRecord(tx, rec)
		out[i] = soapResult{id: id}
	}
	return out
}

// writeSOAPResults writes a call's results, one result element per ID, in
// the order of the request, with the LimitInfoHeader.
func (s *Sandbox) writeSOAPResults(w http.ResponseWriter, element string, results []soapResult) {
	s.mu.Lock()
	used, limit := s.used, s.opts.DailyBudget
	s.mu.Unlock()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="` + nsSOAPEnv + `" xmlns="` + nsPartner + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	fmt.Fprintf(&b, "<soapenv:Header><LimitInfoHeader><limitInfo><current>%d</current><limit>%d</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>", used, limit)
	b.WriteString("<soapenv:Body><" + element + ">")
	for _, r := range results {
		b.WriteString("<result>")
		if r.err != nil {
			b.WriteString("<errors>")
			for _, f := range r.err.fields {
				b.WriteString("<fields>" + xmlText(f) + "</fields>")
			}
			b.WriteString("<message>" + xmlText(r.err.message) + "</message><statusCode>" + r.err.code + "</statusCode></errors>")
			b.WriteString(`<id xsi:nil="true"/><success>false</success>`)
		} else {
			b.WriteString("<id>" + r.id + "</id><success>true</success>")
		}
		b.WriteString("</result>")
	}
	b.WriteString("</" + element + "></soapenv:Body></soapenv:Envelope>")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, b.String())
}
