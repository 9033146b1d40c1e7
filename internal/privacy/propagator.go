package privacy

import (
	"context"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// KeyIDHeader is the Temporal header that carries the data key name, and
// the payload metadata key that carries the concrete ID of the key
// generation a payload was encrypted under.
const KeyIDHeader = "webcaresync-key-id"

type keyIDContextKey struct{}

// WithKeyID returns a copy of ctx whose Temporal payloads (workflow inputs,
// signals, activity results) are encrypted under the live generation of the
// data key name id.
func WithKeyID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyIDContextKey{}, id)
}

// KeyIDFromContext returns the data key name set by WithKeyID or extracted
// from a Temporal header, or "".
func KeyIDFromContext(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(keyIDContextKey{}).(string)
	return id
}

// WorkflowWithKeyID returns a copy of a workflow context whose payloads
// (activity and child workflow inputs, results, continue-as-new arguments) are
// encrypted under the live generation of the data key name id. The name also
// flows to activities and child workflows started from the returned context.
func WorkflowWithKeyID(ctx workflow.Context, id string) workflow.Context {
	return workflow.WithValue(ctx, keyIDContextKey{}, id)
}

// KeyIDFromWorkflow returns the data key name of a workflow context, or "".
func KeyIDFromWorkflow(ctx workflow.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(keyIDContextKey{}).(string)
	return id
}

// keyIDPropagator carries the data key ID in the Temporal header.
type keyIDPropagator struct{}

// NewKeyIDPropagator returns a workflow.ContextPropagator that carries the data
// key ID from client to workflow, from workflow to activities and child
// workflows, and into activity contexts. Register it on the client
// (client.Options.ContextPropagators); workers inherit it. The key ID travels
// in clear, so it must be opaque.
func NewKeyIDPropagator() workflow.ContextPropagator { return keyIDPropagator{} }

// headerConverter encodes the header value without the codec: headers are not
// encrypted by Temporal and the key ID is needed to decrypt.
var headerConverter = converter.GetDefaultDataConverter()

func writeKeyID(w workflow.HeaderWriter, id string) error {
	if id == "" {
		return nil
	}
	p, err := headerConverter.ToPayload(id)
	if err != nil {
		return fmt.Errorf("encode key id header: %w", err)
	}
	w.Set(KeyIDHeader, p)
	return nil
}

func readKeyID(r workflow.HeaderReader) (string, error) {
	var id string
	err := r.ForEachKey(func(k string, p *commonpb.Payload) error {
		if k != KeyIDHeader {
			return nil
		}
		if err := headerConverter.FromPayload(p, &id); err != nil {
			return fmt.Errorf("decode key id header: %w", err)
		}
		if !ValidKeyName(id) {
			return fmt.Errorf("invalid key name in header %s", KeyIDHeader)
		}
		return nil
	})
	return id, err
}

// Inject implements workflow.ContextPropagator.
func (keyIDPropagator) Inject(ctx context.Context, w workflow.HeaderWriter) error {
	return writeKeyID(w, KeyIDFromContext(ctx))
}

// Extract implements workflow.ContextPropagator.
func (keyIDPropagator) Extract(ctx context.Context, r workflow.HeaderReader) (context.Context, error) {
	id, err := readKeyID(r)
	if err != nil || id == "" {
		return ctx, err
	}
	return WithKeyID(ctx, id), nil
}

// InjectFromWorkflow implements workflow.ContextPropagator.
func (keyIDPropagator) InjectFromWorkflow(ctx workflow.Context, w workflow.HeaderWriter) error {
	return writeKeyID(w, KeyIDFromWorkflow(ctx))
}

// ExtractToWorkflow implements workflow.ContextPropagator.
func (keyIDPropagator) ExtractToWorkflow(ctx workflow.Context, r workflow.HeaderReader) (workflow.Context, error) {
	id, err := readKeyID(r)
	if err != nil || id == "" {
		return ctx, err
	}
	return WorkflowWithKeyID(ctx, id), nil
}

var _ workflow.ContextPropagator = keyIDPropagator{}
