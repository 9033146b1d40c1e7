-- webcaresync store, initial schema (PostgreSQL).
-- Times are unix microseconds (UTC) in BIGINT columns, identical to the
-- PostgreSQL schema, so that both backends share one code path.

CREATE TABLE subjects (
    id          TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY,
    channel        TEXT NOT NULL DEFAULT '',
    subject_id     TEXT NOT NULL DEFAULT '',
    key_id         TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    last_event_at  BIGINT NOT NULL
);
CREATE INDEX conversations_subject ON conversations (subject_id);

CREATE TABLE events (
    key              TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL DEFAULT '',
    claimed_at       BIGINT NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id);

CREATE TABLE identifiers (
    subject_id              TEXT NOT NULL,
    kind                    TEXT NOT NULL,
    hash                    TEXT NOT NULL,
    ciphertext              BYTEA,
    key_id                  TEXT NOT NULL DEFAULT '',
    source_conversation_id  TEXT NOT NULL DEFAULT '',
    created_at              BIGINT NOT NULL,
    PRIMARY KEY (subject_id, kind, hash)
);
CREATE INDEX identifiers_hash ON identifiers (hash);

CREATE TABLE links (
    id                     TEXT PRIMARY KEY,
    subject_id             TEXT NOT NULL,
    channel                TEXT NOT NULL,
    persona_hash           TEXT NOT NULL,
    crm_persona_id         TEXT NOT NULL DEFAULT '',
    crm_contact_id         TEXT NOT NULL DEFAULT '',
    rule                   TEXT NOT NULL DEFAULT '',
    evidence_message_hash  TEXT NOT NULL DEFAULT '',
    approved_by            TEXT NOT NULL DEFAULT '',
    created_at             BIGINT NOT NULL,
    revoked_at             BIGINT
);
CREATE INDEX links_subject ON links (subject_id);
CREATE UNIQUE INDEX links_active_persona ON links (channel, persona_hash) WHERE revoked_at IS NULL;

CREATE TABLE reviews (
    id                     TEXT PRIMARY KEY,
    conversation_id        TEXT NOT NULL DEFAULT '',
    subject_id             TEXT NOT NULL DEFAULT '',
    status                 TEXT NOT NULL,
    candidates_ciphertext  BYTEA,
    reason                 TEXT NOT NULL DEFAULT '',
    rule                   TEXT NOT NULL DEFAULT '',
    created_at             BIGINT NOT NULL,
    resolved_at            BIGINT,
    resolved_by            TEXT NOT NULL DEFAULT '',
    resolved_contact_id    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reviews_status ON reviews (status, created_at);
CREATE INDEX reviews_subject ON reviews (subject_id);
CREATE INDEX reviews_conversation ON reviews (conversation_id);

CREATE TABLE data_keys (
    id             TEXT PRIMARY KEY,
    subject_id     TEXT NOT NULL DEFAULT '',
    wrapped        BYTEA,
    master_key_id  TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    destroyed_at   BIGINT
);
CREATE INDEX data_keys_subject ON data_keys (subject_id);
CREATE INDEX data_keys_master ON data_keys (master_key_id, id);

CREATE TABLE suppression (
    hash        TEXT PRIMARY KEY,
    dsr_id      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE dsrs (
    id                   TEXT PRIMARY KEY,
    type                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    subject_hash         TEXT NOT NULL DEFAULT '',
    received_at          BIGINT NOT NULL,
    deadline             BIGINT NOT NULL,
    extended             BOOLEAN NOT NULL DEFAULT FALSE,
    extension_reason     TEXT NOT NULL DEFAULT '',
    verified_by          TEXT NOT NULL DEFAULT '',
    verification_method  TEXT NOT NULL DEFAULT '',
    approved_by          TEXT NOT NULL DEFAULT '',
    approved_at          BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    report_json          BYTEA
);
CREATE INDEX dsrs_status ON dsrs (status, received_at);
CREATE INDEX dsrs_subject ON dsrs (subject_hash);

CREATE TABLE dsr_ledger (
    seq        BIGSERIAL PRIMARY KEY,
    entry_id   TEXT UNIQUE,
    dsr_id     TEXT NOT NULL,
    system     TEXT NOT NULL,
    action     TEXT NOT NULL,
    count      BIGINT NOT NULL DEFAULT 0,
    detail     TEXT NOT NULL DEFAULT '',
    policy     TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL
);
CREATE INDEX dsr_ledger_dsr ON dsr_ledger (dsr_id, seq);

CREATE TABLE audit (
    seq          BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL DEFAULT '',
    target       TEXT NOT NULL DEFAULT '',
    outcome      TEXT NOT NULL DEFAULT '',
    remote_addr  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at, seq);

CREATE TABLE parked (
    id                     TEXT PRIMARY KEY,
    conversation_id        TEXT NOT NULL DEFAULT '',
    platform_message_hash  TEXT NOT NULL DEFAULT '',
    payload                BYTEA,
    key_id                 TEXT NOT NULL DEFAULT '',
    error_code             TEXT NOT NULL DEFAULT '',
    reason                 TEXT NOT NULL DEFAULT '',
    fields                 TEXT NOT NULL DEFAULT '[]',
    parked_at              BIGINT NOT NULL
);
CREATE INDEX parked_conversation ON parked (conversation_id);
CREATE INDEX parked_at ON parked (parked_at, id);

CREATE TABLE checkpoints (
    name        TEXT PRIMARY KEY,
    "offset"    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE inbox (
    seq              BIGSERIAL PRIMARY KEY,
    conversation_id  TEXT NOT NULL DEFAULT '',
    key_id           TEXT NOT NULL DEFAULT '',
    payload          BYTEA,
    enqueued_at      BIGINT NOT NULL,
    claimed_until    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX inbox_conversation ON inbox (conversation_id);

-- The DSR ledger and the audit log are append-only: these triggers reject
-- UPDATE, DELETE and TRUNCATE for every role that does not drop them first.
CREATE FUNCTION webcaresync_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER dsr_ledger_append_only BEFORE UPDATE OR DELETE ON dsr_ledger
    FOR EACH ROW EXECUTE FUNCTION webcaresync_append_only();
CREATE TRIGGER dsr_ledger_no_truncate BEFORE TRUNCATE ON dsr_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION webcaresync_append_only();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION webcaresync_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION webcaresync_append_only();
