package salesforce

import (
	"testing"

	appmetrics "github.com/webcaresync/webcaresync/internal/metrics"
)

// Every code the connector refuses a batch with keeps its own value in
// webcaresync_crm_refused_total instead of counting as "other": the codes
// it describes, its own codes, and the OAuth codes of a refused login.
func TestRefusalCodesAreKnownToTheMetric(t *testing.T) {
	codes := []string{"MAPPING_ERROR", "JWT_SIGN", "ENCODE", "TOO_MANY_SUBREQUESTS", "UNKNOWN_ERROR", codeHardDeleteNotPermitted,
		"invalid_grant", "invalid_client", "invalid_client_id", "HTTP_400", "HTTP_404"}
	for code := range permanentReasons {
		codes = append(codes, code)
	}
	for _, code := range codes {
		if got := appmetrics.RefusalCode(code); got != code {
			t.Errorf("refusal code %s counts as %q; add it to knownRefusalCodes in internal/metrics/crm_refused.go", code, got)
		}
	}
	for _, code := range []string{"", "HTTP_500", "HTTP_4x0", "HTTP_4000", "invalid_field", "NOT_A_CODE", "INVALID_FIELD "} {
		if got := appmetrics.RefusalCode(code); got != appmetrics.RefusalCodeOther {
			t.Errorf("code %q counts as %q, want %q", code, got, appmetrics.RefusalCodeOther)
		}
	}
}
