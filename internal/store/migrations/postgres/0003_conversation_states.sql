-- Conversation states (PostgreSQL): what a conversation workflow remembers
-- about the conversation's CRM records (case, personas, contact, recent
-- posts for reply-to links), sealed under the conversation's data key, so
-- that a new run after the previous one went idle continues where it
-- stopped instead of opening a second case. One row per conversation; an
-- erasure deletes it with the conversation.

CREATE TABLE conversation_states (
    conversation_id  TEXT PRIMARY KEY,
    sealed           BYTEA NOT NULL,
    key_id           TEXT NOT NULL DEFAULT '',
    updated_at       BIGINT NOT NULL
);
