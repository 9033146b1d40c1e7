// Package channels defines the shape every inbound webhook source follows:
// a GET handshake, signature verification over the raw body, and a parser
// that turns the platform's payload into canonical schemas.Events. Each
// platform lives in its own sub-package (meta, x, generic), so adding a
// channel means adding a folder.
//
// Conversation keys are built per channel from platform ids only:
//
//	messenger:<page id>:<psid>
//	instagram:<account id>:<igsid>      (direct messages)
//	instagram:thread:<media id>         (comments and mentions)
//	whatsapp:<phone_number_id>:<wa_id>
//	x:dm:<account id>:<other participant id>
//	x:thread:<root tweet id>            (as far as the body knows the chain)
//
// They may contain phone numbers (wa_id) and are never used as workflow IDs
// as they are.
//
// Errors from Verify wrap ErrUnauthorized (answer 401); errors from Parse are
// *BadRequest (answer 400 with the field). No error message quotes payload
// content, so all of them are safe to log and to return to the caller.
package channels

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"

	"github.com/webcaresync/webcaresync/schemas"
)

// Channel is one inbound webhook source.
type Channel interface {
	// Name is the channel's name, such as "meta", "x" or "generic". It is
	// also the URL path: /webhooks/{name}.
	Name() string
	// Handshake answers the platform's GET verification (Meta's
	// hub.challenge, X's CRC). A channel without one answers 404.
	Handshake(w http.ResponseWriter, r *http.Request)
	// Verify checks the request's signature over the raw body. It returns
	// an error wrapping ErrUnauthorized on a bad or missing signature.
	Verify(r *http.Request, body []byte) error
	// Parse turns a verified body into canonical events, in body order. It
	// returns a *BadRequest for malformed JSON, an unknown object type or an
	// event that fails the schema. Every returned event passes
	// schemas.ValidateEvent.
	Parse(body []byte) ([]schemas.Event, error)
}

// ErrUnauthorized is wrapped by every Verify error: the request's signature
// is missing, malformed, stale or wrong.
var ErrUnauthorized = errors.New("webhook signature is missing or invalid: check the shared secret")

// Unauthorized returns an error wrapping ErrUnauthorized with a reason that
// must not contain request content.
func Unauthorized(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, reason)
}

// BadRequest reports a body that cannot be accepted. Field is the dotted
// path of the failing field (such as "entry[0].messaging[1].sender.id" or
// "events[2].channel"), empty when the whole body is at fault. Message never
// quotes payload content.
type BadRequest struct {
	// Field is the path of the failing field, if any.
	Field string
	// Message says what is wrong and what is expected.
	Message string
}

// Error implements error.
func (e *BadRequest) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Invalid returns a *BadRequest for field.
func Invalid(field, message string) *BadRequest {
	return &BadRequest{Field: field, Message: message}
}

// FromValidation turns an error from schemas.Validate or
// schemas.ValidateEvent into a *BadRequest whose field is prefixed with
// prefix (such as "events[2]"). Errors of other types become a BadRequest
// with the prefix as field.
func FromValidation(prefix string, err error) *BadRequest {
	var fe *schemas.FieldError
	if !errors.As(err, &fe) {
		return &BadRequest{Field: prefix, Message: "event does not match the schema"}
	}
	field := fe.Field
	switch {
	case prefix == "":
	case field == "":
		field = prefix
	default:
		field = prefix + "." + field
	}
	return &BadRequest{Field: field, Message: fe.Message}
}

// EqualSignature compares two signatures in constant time.
func EqualSignature(got, want []byte) bool {
	return hmac.Equal(got, want)
}
