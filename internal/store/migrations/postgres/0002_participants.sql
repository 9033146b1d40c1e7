-- Conversation participants (PostgreSQL): every customer who wrote in a
-- conversation, so that an erasure finds a public thread through each of
-- its customers, not only through the conversation's first author
-- (conversations.subject_id).

CREATE TABLE participants (
    conversation_id  TEXT NOT NULL,
    subject_id       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, subject_id)
);
CREATE INDEX participants_subject ON participants (subject_id, created_at);
