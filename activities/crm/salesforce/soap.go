package salesforce

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// The SOAP partner API, for the one call REST lacks: emptyRecycleBin().
// The OAuth access token is a valid SOAP session (SessionHeader).

// MaxEmptyRecycleBin is the most IDs one emptyRecycleBin() call takes.
const MaxEmptyRecycleBin = 200

const (
	nsSOAPEnv = "http://schemas.xmlsoap.org/soap/envelope/"
	nsPartner = "urn:partner.soap.sforce.com"
)

// soapPath is the partner API endpoint, /services/Soap/u/62.0.
func (c *Client) soapPath() string {
	return "/services/Soap/u/" + strings.TrimPrefix(c.cfg.APIVersion, "v")
}

// EmptyRecycleBin removes records from the Recycle Bin for good with the
// SOAP call emptyRecycleBin(), 200 IDs per call; the records can then no
// longer be restored. The results are in the order of ids. The user may
// purge what it deleted itself (and its subordinates); records deleted by
// others need "Modify All Data", else they fail with
// INSUFFICIENT_ACCESS_OR_READONLY.
func (c *Client) EmptyRecycleBin(ctx context.Context, ids []string) ([]SaveResult, error) {
	out := make([]SaveResult, 0, len(ids))
	for start := 0; start < len(ids); start += MaxEmptyRecycleBin {
		part := ids[start:min(start+MaxEmptyRecycleBin, len(ids))]
		body, err := c.soapCall(ctx, "emptyRecycleBin", part)
		if err != nil {
			return out, err
		}
		res, err := parseSOAPResults(body, "emptyRecycleBinResponse")
		if err != nil || len(res) != len(part) {
			return out, badAnswer("emptyRecycleBin")
		}
		for i := range res {
			res[i].ID = part[i]
		}
		out = append(out, res...)
	}
	return out, nil
}

// soapCall sends one partner API call whose arguments are ids, renewing
// the session once on INVALID_SESSION_ID as REST calls do.
func (c *Client) soapCall(ctx context.Context, op string, ids []string) ([]byte, error) {
	s, err := c.currentSession(ctx)
	if err != nil {
		return nil, err
	}
	body, err := c.sendSOAP(ctx, s, op, ids)
	var ce *crm.Error
	if err == nil || !errors.As(err, &ce) || ce.Code != "INVALID_SESSION_ID" {
		return body, err
	}
	c.metrics.refreshes.Inc()
	if s, err = c.renew(ctx, s.gen); err != nil {
		return nil, err
	}
	return c.sendSOAP(ctx, s, op, ids)
}

func (c *Client) sendSOAP(ctx context.Context, s session, op string, ids []string) ([]byte, error) {
	if cc, ok := ctx.Value(counterKey{}).(*callCounter); ok {
		cc.n.Add(1)
	}
	var env bytes.Buffer
	env.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="` + nsSOAPEnv + `" xmlns:urn="` + nsPartner + `">`)
	env.WriteString(`<soapenv:Header><urn:SessionHeader><urn:sessionId>`)
	_ = xml.EscapeText(&env, []byte(s.token))
	env.WriteString(`</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:` + op + `>`)
	for _, id := range ids {
		env.WriteString("<urn:ids>")
		_ = xml.EscapeText(&env, []byte(id))
		env.WriteString("</urn:ids>")
	}
	env.WriteString(`</urn:` + op + `></soapenv:Body></soapenv:Envelope>`)
	resp, err := c.http.R().SetContext(ctx).
		SetHeader("Content-Type", "text/xml; charset=UTF-8").
		SetHeader("Accept", "text/xml").
		SetHeader("SOAPAction", `""`).
		SetBody(env.Bytes()).
		Post(s.instanceURL + c.soapPath())
	if err != nil {
		c.metrics.calls.WithLabelValues("network").Inc()
		return nil, &crm.Error{Kind: crm.Transient, Code: "NETWORK", Message: "call failed: " + networkReason(err)}
	}
	if resp.StatusCode() == http.StatusOK {
		c.metrics.calls.WithLabelValues("ok").Inc()
		c.metrics.budgetExhausted.Set(0)
		return resp.Body(), nil
	}
	e := classifyFault(resp.StatusCode(), resp.Body())
	e.RetryAfter = retryAfter(resp.Header())
	c.metrics.calls.WithLabelValues(string(e.Kind)).Inc()
	if e.Kind == crm.BudgetExhausted {
		c.metrics.budgetExhausted.Set(1)
	}
	return nil, e
}

// classifyFault classifies a SOAP fault (faultcode sf:CODE, faultstring
// "CODE: message") like a REST error with that code. A fault always comes
// with HTTP 500, so only server-side codes and statuses other than 500
// count as Salesforce being unavailable.
func classifyFault(status int, body []byte) *crm.Error {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	var env struct {
		Body struct {
			Fault struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	_ = xml.Unmarshal(body, &env)
	code := env.Body.Fault.Code
	if _, after, ok := strings.Cut(code, ":"); ok {
		code = after
	}
	code = strings.TrimSpace(code)
	if !isAPIName(code) {
		code = ""
	}
	if status == http.StatusInternalServerError {
		switch code {
		case "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "":
		default:
			status = http.StatusBadRequest
		}
	}
	if code == "Client" {
		code = "SOAP_CLIENT_FAULT"
	}
	return classifyCode(status, code, env.Body.Fault.String, nil)
}

// parseSOAPResults reads the result elements of a partner API answer
// (emptyRecycleBinResponse, undeleteResponse): success, or the first
// error's status code.
func parseSOAPResults(body []byte, element string) ([]SaveResult, error) {
	var env struct {
		Body struct {
			Responses []struct {
				XMLName xml.Name
				Results []struct {
					ID      string `xml:"id"`
					Success bool   `xml:"success"`
					Errors  []struct {
						StatusCode string   `xml:"statusCode"`
						Message    string   `xml:"message"`
						Fields     []string `xml:"fields"`
					} `xml:"errors"`
				} `xml:"result"`
			} `xml:",any"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	if len(env.Body.Responses) != 1 || env.Body.Responses[0].XMLName.Local != element {
		return nil, errors.New("unexpected SOAP answer")
	}
	out := make([]SaveResult, 0, len(env.Body.Responses[0].Results))
	for _, r := range env.Body.Responses[0].Results {
		res := SaveResult{ID: strings.TrimSpace(r.ID)}
		if !r.Success {
			re := recordError{StatusCode: "UNKNOWN_ERROR"}
			if len(r.Errors) > 0 {
				re = recordError{StatusCode: strings.TrimSpace(r.Errors[0].StatusCode), Message: r.Errors[0].Message, Fields: r.Errors[0].Fields}
			}
			res.Err = re.asError()
			res.Fields = safeFieldNames(re.Fields)
		}
		out = append(out, res)
	}
	return out, nil
}
