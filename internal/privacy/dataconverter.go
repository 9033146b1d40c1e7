package privacy

import (
	"context"
	"errors"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// ErasedErrorType is the application error type FailureConverter gives to
// errors caused by a destroyed data key. Such errors are non-retryable.
const ErasedErrorType = "WebcaresyncErased"

// DataConverter is the Temporal data converter of webcaresync: the SDK's
// default converter followed by AES-256-GCM encryption under the data key
// named in the Go or workflow context. It is context aware
// (converter.ContextAware): the SDK calls WithContext and WithWorkflowContext
// before converting, so each payload is encrypted under the key of the
// context it is written in. Set it as client.Options.DataConverter (workers
// inherit it) together with NewKeyIDPropagator and NewFailureConverter.
//
// Decoding a payload whose key was destroyed returns an error wrapping
// ErrErased.
type DataConverter struct {
	parent converter.DataConverter
	codec  *Codec
	keyID  string
	inner  converter.DataConverter
}

// NewDataConverter returns a DataConverter over a Keyring.
func NewDataConverter(kr *Keyring) *DataConverter {
	return newDataConverter(converter.GetDefaultDataConverter(), NewCodec(kr), "")
}

func newDataConverter(parent converter.DataConverter, codec *Codec, keyID string) *DataConverter {
	c := codec.WithKeyID(keyID)
	return &DataConverter{
		parent: parent,
		codec:  codec,
		keyID:  keyID,
		inner:  converter.NewCodecDataConverter(parent, strictCodec{c}),
	}
}

// WithKeyID returns a copy of the converter that encrypts under the live
// generation of the data key name id ("" selects the system key).
func (d *DataConverter) WithKeyID(id string) *DataConverter {
	if id == d.keyID {
		return d
	}
	return newDataConverter(d.parent, d.codec, id)
}

// KeyID returns the key name the converter encrypts under ("" means the
// system key).
func (d *DataConverter) KeyID() string { return d.keyID }

// Codec returns the payload codec of the converter, for the codec HTTP
// endpoint.
func (d *DataConverter) Codec() *Codec { return d.codec }

// WithContext implements converter.ContextAware: payloads are encrypted
// under the key ID of ctx, if it has one.
func (d *DataConverter) WithContext(ctx context.Context) converter.DataConverter {
	if id := KeyIDFromContext(ctx); id != "" {
		return d.WithKeyID(id)
	}
	return d
}

// WithWorkflowContext implements converter.ContextAware: payloads are
// encrypted under the key ID of the workflow context, if it has one.
func (d *DataConverter) WithWorkflowContext(ctx converter.WorkflowContext) converter.DataConverter {
	if ctx == nil {
		return d
	}
	if id, _ := ctx.Value(keyIDContextKey{}).(string); id != "" {
		return d.WithKeyID(id)
	}
	return d
}

// ToPayload implements converter.DataConverter.
func (d *DataConverter) ToPayload(value any) (*commonpb.Payload, error) {
	return d.inner.ToPayload(value)
}

// ToPayloads implements converter.DataConverter.
func (d *DataConverter) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	return d.inner.ToPayloads(values...)
}

// FromPayload implements converter.DataConverter.
func (d *DataConverter) FromPayload(payload *commonpb.Payload, valuePtr any) error {
	return d.inner.FromPayload(payload, valuePtr)
}

// FromPayloads implements converter.DataConverter.
func (d *DataConverter) FromPayloads(payloads *commonpb.Payloads, valuePtrs ...any) error {
	return d.inner.FromPayloads(payloads, valuePtrs...)
}

// ToString implements converter.DataConverter.
func (d *DataConverter) ToString(payload *commonpb.Payload) string {
	return d.inner.ToString(payload)
}

// ToStrings implements converter.DataConverter.
func (d *DataConverter) ToStrings(payloads *commonpb.Payloads) []string {
	return d.inner.ToStrings(payloads)
}

// FailureConverterOptions configures NewFailureConverter.
type FailureConverterOptions struct {
	// KeyIDForWorkflow maps the ID of the workflow a failure belongs to onto
	// the data key the failure is encrypted under. The SDK passes failure
	// converters the workflow ID but not the workflow context, so this is the
	// only way to tie failures to a subject. Default: the workflow ID itself
	// when it is a valid key name, otherwise the system key. An empty result
	// selects the system key.
	KeyIDForWorkflow func(workflowID string) string
}

// FailureConverter is the SDK's default failure converter with
// EncodeCommonAttributes set, so failure messages and stack traces are
// encrypted like any payload. It also turns errors caused by destroyed keys
// into non-retryable application errors of type ErasedErrorType.
//
// Encoding a failure never fails (the SDK panics if it does): when the key
// cannot be used (destroyed, store unreachable) the failure is encrypted under
// the system key, and when that fails too its message is withheld.
type FailureConverter struct {
	dc    *DataConverter
	opts  FailureConverterOptions
	inner converter.FailureConverter
}

// NewFailureConverter returns a FailureConverter over a DataConverter.
func NewFailureConverter(dc *DataConverter, opts FailureConverterOptions) *FailureConverter {
	if opts.KeyIDForWorkflow == nil {
		opts.KeyIDForWorkflow = func(id string) string {
			if ValidKeyName(id) {
				return id
			}
			return ""
		}
	}
	return &FailureConverter{
		dc:   dc,
		opts: opts,
		inner: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter:          failureDataConverter{dc},
			EncodeCommonAttributes: true,
		}),
	}
}

// WithSerializationContext implements
// converter.FailureConverterWithSerializationContext: failures are encrypted
// under the key that KeyIDForWorkflow picks for the workflow.
func (f *FailureConverter) WithSerializationContext(sc converter.SerializationContext) converter.FailureConverter {
	var workflowID string
	switch c := sc.(type) {
	case converter.WorkflowSerializationContext:
		workflowID = c.WorkflowID
	case converter.ActivitySerializationContext:
		workflowID = c.WorkflowID
	}
	if workflowID == "" {
		return f
	}
	keyID := f.opts.KeyIDForWorkflow(workflowID)
	if keyID == f.dc.KeyID() {
		return f
	}
	return NewFailureConverter(f.dc.WithKeyID(keyID), f.opts)
}

// ErrorToFailure implements converter.FailureConverter.
func (f *FailureConverter) ErrorToFailure(err error) *failurepb.Failure {
	if err != nil && errors.Is(err, ErrErased) {
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			err = temporal.NewNonRetryableApplicationError(err.Error(), ErasedErrorType, nil)
		}
	}
	return f.inner.ErrorToFailure(err)
}

// FailureToError implements converter.FailureConverter.
func (f *FailureConverter) FailureToError(failure *failurepb.Failure) error {
	return f.inner.FailureToError(failure)
}

// IsErased reports whether err was caused by a destroyed data key, either
// directly (ErrErased) or as a failure converted by FailureConverter.
func IsErased(err error) bool {
	if errors.Is(err, ErrErased) {
		return true
	}
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ErasedErrorType
}

// withheldFailure replaces a failure message that could not be encrypted.
var withheldFailure = map[string]string{
	"message": "failure message withheld: it could not be encrypted (data key unavailable)",
}

// failureDataConverter is a DataConverter whose encoding never fails.
type failureDataConverter struct{ *DataConverter }

// ToPayload implements converter.DataConverter.
func (f failureDataConverter) ToPayload(value any) (*commonpb.Payload, error) {
	if p, err := f.DataConverter.ToPayload(value); err == nil {
		return p, nil
	}
	if p, err := f.DataConverter.WithKeyID("").ToPayload(value); err == nil {
		return p, nil
	}
	return f.parent.ToPayload(withheldFailure)
}

// ToPayloads implements converter.DataConverter.
func (f failureDataConverter) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	if p, err := f.DataConverter.ToPayloads(values...); err == nil {
		return p, nil
	}
	if p, err := f.DataConverter.WithKeyID("").ToPayloads(values...); err == nil {
		return p, nil
	}
	withheld := make([]any, len(values))
	for i := range withheld {
		withheld[i] = withheldFailure
	}
	return f.parent.ToPayloads(withheld...)
}

var (
	_ converter.DataConverter                            = (*DataConverter)(nil)
	_ converter.ContextAware                             = (*DataConverter)(nil)
	_ converter.FailureConverter                         = (*FailureConverter)(nil)
	_ converter.FailureConverterWithSerializationContext = (*FailureConverter)(nil)
)
