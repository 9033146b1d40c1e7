// Package privacy keeps personal data unreadable wherever webcaresync cannot
// delete it: in Temporal's history, in backups and in logs.
//
// # Keys
//
// A master key (MasterKeys, loaded from WEBCARESYNC_MASTER_KEY_FILE) wraps
// per-subject data keys. Data keys live in a KeyStore (the webcaresync store in
// production, MemoryKeyStore in tests). Callers name them by opaque key names,
// for example a conversation ID or a DSR ID. The Keyring creates a data key on
// first use, merges keys into one subject when identities are linked (Merge)
// and destroys all keys of a subject (Destroy). Destroying the keys is the
// crypto-shredding step of an erasure: every payload encrypted under them,
// including copies in backups, becomes unreadable even with the master key.
//
// # Key generations
//
// A conversation ID is derived from the conversation, so a customer who
// writes again after an erasure brings back the same key name. A key name
// therefore maps to generations of data keys: generation 1 is the key whose
// ID is the name itself, generation N ≥ 2 the key "name.genN"
// (GenerationKeyID, ParseKeyID). The live generation of a name is the first
// one whose key was not destroyed; the Keyring creates it when missing, and
// processes that create it at the same time converge on one key, because the
// store keeps the first key written under an ID. So after an erasure the
// returning customer starts afresh under a new key, and everything written
// under the destroyed generations stays erased. Key names must not contain
// ".gen" (ValidKeyName); at most MaxGenerations generations exist per name.
//
// Encoding (the codec, Seal) resolves the name to its live generation and
// records that generation's concrete key ID beside the ciphertext: in the
// payload metadata, and in a small header of sealed data (version, key ID
// length, key ID, then nonce and ciphertext; the AAD binds the ciphertext to
// the key ID). Decoding uses the recorded ID, never the name's current
// generation, so it finds the destroyed key and reports the data erased.
// Open also reads sealed data from before generations (no header, sealed
// under the name itself).
//
// The Keyring caches unwrapped keys for a short time (default 30 seconds, see
// WithCacheTTL). Destroy clears the cache of the process that calls it at once;
// other processes (another worker, the codec endpoint of another replica) stop
// using a destroyed key only when their cache entry expires, so at most one
// cache TTL after the erasure; they then move the name on to its next
// generation. Data they encrypt under the destroyed key within that window is
// erased with it.
//
// # Temporal payloads
//
// DataConverter encrypts every payload with AES-256-GCM under the live
// generation of the key name found in the Go or workflow context (WithKeyID,
// WorkflowWithKeyID). The key name travels between client, workflows,
// activities and child workflows in a Temporal header through the propagator
// returned by NewKeyIDPropagator, so they all use the same key. Payloads
// without a key name are encrypted under the "system" key. The concrete key ID
// is written in clear in the payload metadata (webcaresync-key-id), so
// decoding never needs the context. Key names must therefore be opaque;
// Hasher.OpaqueID makes such names.
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
// Encoding never fails because a key was destroyed: it moves on to the
// name's next generation. The erasure flow must therefore end (and delete) a
// subject's running workflows before it destroys the keys: a workflow whose
// history can no longer be decoded cannot be replayed, and an activity still
// running for it would write its result under the new generation.
//
// # Failures
//
// FailureConverter encodes failure messages and stack traces
// (EncodeCommonAttributes), so error text is encrypted too. The SDK gives a
// failure converter only the workflow ID, not the Go context, so failures are
// encrypted under the key named by the workflow ID (see
// FailureConverterOptions.KeyIDForWorkflow); use the conversation's key name
// as its workflow ID and failures are shredded together with its payloads.
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
