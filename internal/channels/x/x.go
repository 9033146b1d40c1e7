// Package x receives X (Twitter) Account Activity API webhooks on
// /webhooks/x. X checks the endpoint with a CRC GET (crc_token) and signs
// every POST with x-twitter-webhooks-signature, a base64 HMAC-SHA256 of the
// raw body under the app's consumer secret.
package x

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/webcaresync/webcaresync/internal/channels"
)

// SignatureHeader is the header X signs POST bodies in.
const SignatureHeader = "X-Twitter-Webhooks-Signature"

// Channel is the X Account Activity webhook source. Create it with New.
type Channel struct {
	consumerSecret []byte
}

// New returns the X channel. consumerSecret is the app's API secret key
// (consumer secret), not a bearer or access token. An empty secret makes
// every Verify and Handshake fail.
func New(consumerSecret string) *Channel {
	return &Channel{consumerSecret: []byte(consumerSecret)}
}

// Name returns "x".
func (c *Channel) Name() string { return "x" }

// Handshake answers the Challenge-Response Check: GET ?crc_token=T is
// answered 200 with {"response_token":"sha256=<base64 HMAC-SHA256(consumer
// secret, T)>"}. A missing token gets 400.
func (c *Channel) Handshake(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("crc_token")
	if token == "" || len(c.consumerSecret) == 0 {
		http.Error(w, "crc_token query parameter is required", http.StatusBadRequest)
		return
	}
	resp, _ := json.Marshal(map[string]string{"response_token": CRCResponse(string(c.consumerSecret), token)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// CRCResponse returns the response_token value for crcToken:
// "sha256=" + base64(HMAC-SHA256(consumerSecret, crcToken)).
func CRCResponse(consumerSecret, crcToken string) string {
	return Sign(consumerSecret, []byte(crcToken))
}

// Verify checks x-twitter-webhooks-signature ("sha256=" and the standard,
// padded base64 HMAC-SHA256 of the raw body) in constant time. Any other
// encoding of the same HMAC is refused.
func (c *Channel) Verify(r *http.Request, body []byte) error {
	if len(c.consumerSecret) == 0 {
		return channels.Unauthorized("x consumer secret is not configured")
	}
	header := r.Header.Get(SignatureHeader)
	if header == "" {
		return channels.Unauthorized("missing " + SignatureHeader + " header")
	}
	b64, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return channels.Unauthorized(SignatureHeader + " must start with sha256=")
	}
	// Go's base64 decoder skips \r and \n and ignores the unused bits of
	// the last character, so several headers would decode to the same
	// HMAC; only the one encoding X sends is accepted.
	got, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(got) != sha256.Size || base64.StdEncoding.EncodeToString(got) != b64 {
		return channels.Unauthorized(SignatureHeader + " must be sha256= followed by a base64 SHA-256 HMAC")
	}
	if !channels.EqualSignature(got, mac(c.consumerSecret, body)) {
		return channels.Unauthorized(SignatureHeader + " does not match the body")
	}
	return nil
}

// Sign returns the x-twitter-webhooks-signature header value X would send
// for body: "sha256=" + base64(HMAC-SHA256(secret, body)).
func Sign(secret string, body []byte) string {
	return "sha256=" + base64.StdEncoding.EncodeToString(mac([]byte(secret), body))
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

var _ channels.Channel = (*Channel)(nil)
