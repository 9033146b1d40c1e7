package metrics

import "github.com/prometheus/client_golang/prometheus"

// CRMRefused counts sync batches the CRM refused as a whole (login
// refused, an object or field of the mapping the org does not have,
// duplicate records), by the CRM's error code. The conversation holds such
// a batch and retries it, so every retry that is refused again counts
// once more: alert on increase, and read the code to know what to fix.
type CRMRefused struct {
	total *prometheus.CounterVec
}

// newCRMRefused creates the counter and registers it on reg.
func newCRMRefused(reg prometheus.Registerer) *CRMRefused {
	c := &CRMRefused{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webcaresync_crm_refused_total",
		Help: "Sync batches the CRM refused as a whole (held and retried, parked after a day), by the CRM's error code; codes outside the known set count as \"other\".",
	}, []string{"code"})}
	reg.MustRegister(c.total)
	return c
}

// Inc counts one refused batch with the CRM's error code. A nil
// CRMRefused counts nothing.
func (c *CRMRefused) Inc(code string) {
	if c == nil {
		return
	}
	c.total.WithLabelValues(RefusalCode(code)).Inc()
}

// RefusalCodeOther is the label value of every code outside the known set.
const RefusalCodeOther = "other"

// RefusalCode is the label value of a CRM error code: the code itself when
// it is one of the known codes (knownRefusalCodes, or HTTP_4xx when the
// answer had no code), RefusalCodeOther for anything else, so that an
// unexpected or garbled code cannot grow the label's cardinality.
func RefusalCode(code string) string {
	if knownRefusalCodes[code] || isHTTP4xx(code) {
		return code
	}
	return RefusalCodeOther
}

// isHTTP4xx reports whether code is HTTP_4xx: the code the Salesforce
// client gives a client error whose body named none (at most 100 values).
func isHTTP4xx(code string) bool {
	const prefix = "HTTP_4"
	if len(code) != len(prefix)+2 || code[:len(prefix)] != prefix {
		return false
	}
	for _, r := range code[len(prefix):] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// knownRefusalCodes are the codes a refusal of a whole batch can carry:
// Salesforce's REST error codes that are not retried, the OAuth error codes
// of a refused login, and the Salesforce connector's own codes. A test in
// activities/crm/salesforce checks that every code the connector describes
// is here.
var knownRefusalCodes = map[string]bool{
	// Salesforce REST API error codes.
	"REQUIRED_FIELD_MISSING":                        true,
	"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST":       true,
	"INVALID_FIELD":                                 true,
	"INVALID_FIELD_FOR_INSERT_UPDATE":               true,
	"FIELD_INTEGRITY_EXCEPTION":                     true,
	"DUPLICATE_VALUE":                               true,
	"DUPLICATES_DETECTED":                           true,
	"STRING_TOO_LONG":                               true,
	"INSUFFICIENT_ACCESS":                           true,
	"INSUFFICIENT_ACCESS_OR_READONLY":               true,
	"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": true,
	"INVALID_CROSS_REFERENCE_KEY":                   true,
	"MALFORMED_ID":                                  true,
	"INVALID_TYPE":                                  true,
	"NOT_FOUND":                                     true,
	"ENTITY_IS_DELETED":                             true,
	"JSON_PARSER_ERROR":                             true,
	"MALFORMED_QUERY":                               true,
	"INVALID_EMAIL_ADDRESS":                         true,
	"FIELD_CUSTOM_VALIDATION_EXCEPTION":             true,
	"CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY":          true,
	"MULTIPLE_RECORDS":                              true,
	"DELETE_FAILED":                                 true,
	"FEATURENOTENABLED":                             true,
	"INVALID_ID_FIELD":                              true,
	"UNDELETE_FAILED":                               true,
	"SOAP_CLIENT_FAULT":                             true,
	"API_DISABLED_FOR_ORG":                          true,
	"API_CURRENTLY_DISABLED":                        true,
	"UNKNOWN_ERROR":                                 true,
	// OAuth error codes of a refused login.
	"invalid_grant":              true,
	"invalid_client":             true,
	"invalid_client_id":          true,
	"invalid_client_credentials": true,
	"invalid_request":            true,
	"unauthorized_client":        true,
	"unsupported_grant_type":     true,
	"inactive_user":              true,
	"inactive_org":               true,
	// The connector's own codes.
	"MAPPING_ERROR":        true,
	"JWT_SIGN":             true,
	"ENCODE":               true,
	"TOO_MANY_SUBREQUESTS": true,
}
