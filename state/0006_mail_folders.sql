-- aurinko-sync store, version 6: the mailbox's folders, so messages.folder_id
-- can be joined to a name.

CREATE TABLE folders (
    account        TEXT NOT NULL,
    folder_id      TEXT NOT NULL,
    name           TEXT,
    full_name      TEXT,
    role           TEXT,
    parent_id      TEXT,
    is_folder      INTEGER,
    is_label       INTEGER,
    raw            TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    removed_at     TEXT,
    PRIMARY KEY (account, folder_id)
) STRICT;
