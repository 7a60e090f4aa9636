-- aurinko-sync store, version 2: email messages and contacts.

CREATE TABLE messages (
    account              TEXT NOT NULL,
    message_id           TEXT NOT NULL,
    thread_id            TEXT,
    folder_id            TEXT,
    internet_message_id  TEXT,
    subject              TEXT,
    from_address         TEXT,
    from_name            TEXT,
    received_at          TEXT,
    sys_labels           TEXT,
    has_attachments      INTEGER NOT NULL DEFAULT 0,
    raw                  TEXT NOT NULL,
    generation           INTEGER NOT NULL,
    synced_at            TEXT NOT NULL,
    PRIMARY KEY (account, message_id)
) STRICT;

CREATE INDEX messages_by_received ON messages (account, received_at);
CREATE INDEX messages_by_thread ON messages (account, thread_id);

CREATE TABLE contacts (
    account       TEXT NOT NULL,
    contact_id    TEXT NOT NULL,
    etag          TEXT,
    display_name  TEXT,
    emails        TEXT,
    raw           TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    synced_at     TEXT NOT NULL,
    PRIMARY KEY (account, contact_id)
) STRICT;
