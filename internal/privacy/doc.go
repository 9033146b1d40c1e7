// Package privacy keeps personal data unreadable wherever webcaresync cannot
// delete it: in Temporal's history, in backups and in logs.
//
// # Keys
//
// A master key (MasterKeys, loaded from WEBCARESYNC_MASTER_KEY_FILE) wraps
// per-subject data keys. Data keys live in a KeyStore (the webcaresync store in
// production, MemoryKeyStore in tests) and are named by opaque key IDs, for
// example a conversation ID or a DSR ID. The Keyring creates a data key on first
// use, merges keys into one subject when identities are linked (Merge) and
// destroys all keys of a subject (Destroy). Destroying the keys is the
// crypto-shredding step of an erasure: every payload encrypted under them,
// including copies in backups, becomes unreadable even with the master key.
//
// The Keyring caches unwrapped keys for a short time (default 30 seconds, see
// WithCacheTTL). Destroy clears the cache of the process that calls it at once;
// other processes (another worker, the codec endpoint of another replica) stop
// using a destroyed key only when their cache entry expires, so at most one
// cache TTL after the erasure.
//
// # Temporal payloads
//
// DataConverter encrypts every payload with AES-256-GCM under the data key
// named by the key ID found in the Go or workflow context (WithKeyID,
// WorkflowWithKeyID). The key ID travels between client, workflows, activities
// and child workflows in a Temporal header through the propagator returned by
// NewKeyIDPropagator, so they all use the same key. Payloads without a key ID
// are encrypted under the "system" key. The key ID is written in clear in the
// payload metadata (webcaresync-key-id), so decoding never needs the context.
// Key IDs must therefore be opaque; Hasher.OpaqueID makes such IDs.
//
// Start workflows (and SignalWithStart) with the key in the Go context,
// privacy.WithKeyID(ctx, id): the SDK encodes a workflow's input with the
// starter's context and its result with the context the workflow started
// with. A key the workflow sets itself with WorkflowWithKeyID covers the
// activities and child workflows it starts afterwards, but not its own input
// and result, which then fall back to the system key.
//
// # Erased data: two decoding paths
//
// Decoding a payload whose key was destroyed behaves differently depending on
// who asks:
//
//   - Codec.Decode, used by the codec HTTP endpoint for the Temporal UI and
//     CLI, replaces the payload with a small JSON marker
//     {"erased":true,"key_id":"…"} (encoding json/plain). Operators see that
//     the data was erased instead of a wall of decode errors.
//   - DataConverter, used inside workflows and activities, returns an error
//     wrapping ErrErased ("data erased under GDPR request; nothing to do").
//     Handing a workflow a marker would let it act on empty data, so it must
//     fail loudly but once: FailureConverter turns such errors into
//     non-retryable application errors of type ErasedErrorType, so an
//     activity is not retried against data that can never come back.
//
// The erasure flow should end a subject's running workflows before it destroys
// the keys; a workflow whose history can no longer be decoded cannot be
// replayed.
//
// # Failures
//
// FailureConverter encodes failure messages and stack traces
// (EncodeCommonAttributes), so error text is encrypted too. The SDK gives a
// failure converter only the workflow ID, not the Go context, so failures are
// encrypted under the key named by the workflow ID (see
// FailureConverterOptions.KeyIDForWorkflow); use the conversation's key ID as
// its workflow ID and failures are shredded together with its payloads.
//
// # Wiring
//
//	mk, _ := privacy.LoadMasterKeys(os.Getenv("WEBCARESYNC_MASTER_KEY_FILE"))
//	kr := privacy.NewKeyring(keyStore, mk, log)
//	dc := privacy.NewDataConverter(kr)
//	c, _ := client.Dial(client.Options{
//		DataConverter:      dc,
//		FailureConverter:   privacy.NewFailureConverter(dc, privacy.FailureConverterOptions{}),
//		ContextPropagators: []workflow.ContextPropagator{privacy.NewKeyIDPropagator()},
//	})
//	ctx = privacy.WithKeyID(ctx, conversationID) // before SignalWithStart
//	mux.Handle("/codec/", privacy.CodecHandler(dc.Codec(), privacy.TokenAuth(codecToken)))
package privacy
