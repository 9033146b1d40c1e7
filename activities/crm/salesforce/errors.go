package salesforce

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// apiError is one entry of Salesforce's error body,
// [{"message","errorCode","fields"}].
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

// maxErrorBody bounds how much of an error body is parsed.
const maxErrorBody = 64 << 10

// classify turns an HTTP error answer into a crm.Error. The message is
// webcaresync's own description of the error code plus field names:
// Salesforce's messages can quote record values ("bad value for restricted
// picklist field: ..."), so they are never passed on.
func classify(status int, body []byte, hdr http.Header) *crm.Error {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	var errs []apiError
	if json.Unmarshal(body, &errs) != nil || len(errs) == 0 {
		var one apiError
		if json.Unmarshal(body, &one) == nil && one.ErrorCode != "" {
			errs = []apiError{one}
		}
	}
	var first apiError
	if len(errs) > 0 {
		first = errs[0]
	}
	e := classifyCode(status, first.ErrorCode, first.Message, first.Fields)
	e.RetryAfter = retryAfter(hdr)
	return e
}

// classifyCode classifies one Salesforce error code. message is only
// inspected for the limit name, never copied.
func classifyCode(status int, code, message string, fields []string) *crm.Error {
	code = strings.TrimSpace(code)
	switch {
	case code == "INVALID_SESSION_ID" || (code == "" && status == http.StatusUnauthorized):
		return &crm.Error{Kind: crm.Transient, Code: "INVALID_SESSION_ID", Message: "session expired and renewing it did not help; retrying later"}
	case code == "REQUEST_LIMIT_EXCEEDED" && strings.Contains(message, "Concurrent"):
		return &crm.Error{Kind: crm.Concurrency, Code: code, Message: "the org's concurrent long request limit (ConcurrentPerOrgLongTxn) is reached; back off"}
	case code == "REQUEST_LIMIT_EXCEEDED":
		return &crm.Error{Kind: crm.BudgetExhausted, Code: code, Message: "the org's daily API request budget (TotalRequests) is used up; syncing pauses until it is available again"}
	case status == http.StatusTooManyRequests:
		return &crm.Error{Kind: crm.Concurrency, Code: orDefault(code, "HTTP_429"), Message: "too many requests; back off"}
	case status >= 500 || transientCodes[code]:
		return &crm.Error{Kind: crm.Transient, Code: orDefault(code, fmt.Sprintf("HTTP_%d", status)), Message: "Salesforce is temporarily unavailable; retrying later"}
	}
	code = orDefault(code, fmt.Sprintf("HTTP_%d", status))
	return &crm.Error{Kind: crm.Permanent, Code: code, Message: describe(code, fields)}
}

// transientCodes are record-level codes that a later attempt can succeed on.
var transientCodes = map[string]bool{
	"UNABLE_TO_LOCK_ROW":                true,
	"SERVER_UNAVAILABLE":                true,
	"PROCESSING_HALTED":                 true,
	"ALL_OR_NONE_OPERATION_ROLLED_BACK": true,
	"QUERY_TIMEOUT":                     true,
}

// permanentReasons say, per error code, what is wrong and what to do.
var permanentReasons = map[string]string{
	"REQUIRED_FIELD_MISSING":                        "a required field has no value; map it in the mapping file or give it a default",
	"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST":       "a value is not in the restricted picklist; fix the lookup or value in the mapping file",
	"INVALID_FIELD":                                 "the field does not exist or is not visible to the integration user; check the mapping and field-level security",
	"INVALID_FIELD_FOR_INSERT_UPDATE":               "the field cannot be written; remove it from the mapping or grant edit access",
	"FIELD_INTEGRITY_EXCEPTION":                     "a value does not fit the field (wrong type or a reference to the wrong object); check the mapping",
	"DUPLICATE_VALUE":                               "a unique field already holds this value on another record",
	"DUPLICATES_DETECTED":                           "a Salesforce duplicate rule blocked the record",
	"STRING_TOO_LONG":                               "a value is longer than the field allows; add truncate(n) in the mapping",
	"INSUFFICIENT_ACCESS":                           "the integration user lacks access; check its profile and permission sets",
	"INSUFFICIENT_ACCESS_OR_READONLY":               "the integration user cannot edit this record; check sharing and permissions",
	"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": "the integration user cannot see a linked record; check sharing",
	"INVALID_CROSS_REFERENCE_KEY":                   "a reference points to a record that does not exist or has the wrong type",
	"MALFORMED_ID":                                  "an id is not a valid Salesforce id",
	"INVALID_TYPE":                                  "the object does not exist or is not visible to the integration user",
	"NOT_FOUND":                                     "the record or resource does not exist",
	"ENTITY_IS_DELETED":                             "the record was deleted in Salesforce",
	"JSON_PARSER_ERROR":                             "Salesforce could not read the request; this is a webcaresync defect, please report it",
	"MALFORMED_QUERY":                               "the SOQL query is invalid; this is a webcaresync defect, please report it",
	"INVALID_EMAIL_ADDRESS":                         "an email value is not a valid address",
	"FIELD_CUSTOM_VALIDATION_EXCEPTION":             "a Salesforce validation rule rejected the record",
	"CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY":          "a trigger or flow in Salesforce rejected the record",
	"MULTIPLE_RECORDS":                              "several records match the external id; remove the duplicates in Salesforce",
	"DELETE_FAILED":                                 "Salesforce refused the delete because other records depend on it",
	"FEATURENOTENABLED":                             "the integration user lacks the Bulk API Hard Delete permission (or the org has no Bulk API); an administrator must grant it",
	"INVALID_ID_FIELD":                              "an id is not valid for this call (for emptyRecycleBin: the record is not in the Recycle Bin)",
	"UNDELETE_FAILED":                               "the record is not in the Recycle Bin",
	"SOAP_CLIENT_FAULT":                             "Salesforce could not read the SOAP request; this is a webcaresync defect, please report it",
}

// describe is the message of a permanent error: the reason and field names.
func describe(code string, fields []string) string {
	reason, ok := permanentReasons[code]
	if !ok {
		reason = "Salesforce rejected the request"
	}
	if len(fields) == 0 {
		return reason
	}
	return reason + " (fields: " + strings.Join(safeFieldNames(fields), ", ") + ")"
}

// safeFieldNames keeps only strings that look like field API names.
func safeFieldNames(fields []string) []string {
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if isAPIName(f) {
			out = append(out, f)
		}
	}
	return out
}

func isAPIName(s string) bool {
	if s == "" || len(s) > 80 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case (r >= '0' && r <= '9' || r == '_' || r == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 || secs > 86400 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 || d > 24*time.Hour {
			return 0
		}
		return d.Round(time.Second)
	}
	return 0
}

// recordError is one error of a record in a Collections or Composite answer.
type recordError struct {
	StatusCode string   `json:"statusCode"`
	ErrorCode  string   `json:"errorCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func (r recordError) code() string {
	if r.StatusCode != "" {
		return r.StatusCode
	}
	return r.ErrorCode
}

// asError classifies a record-level error.
func (r recordError) asError() *crm.Error {
	return classifyCode(http.StatusBadRequest, r.code(), r.Message, r.Fields)
}
