-- aurinko-sync store, version 5: task lists and tasks.

CREATE TABLE task_lists (
    account         TEXT NOT NULL,
    task_list_id    TEXT NOT NULL,
    title           TEXT,
    is_default      INTEGER NOT NULL DEFAULT 0,
    raw             TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    removed_at      TEXT,
    PRIMARY KEY (account, task_list_id)
) STRICT;

CREATE TABLE tasks (
    account        TEXT NOT NULL,
    task_list_id   TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    etag           TEXT,
    title          TEXT,
    status         TEXT,
    due            TEXT,
    completed      TEXT,
    parent_id      TEXT,
    raw            TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    synced_at      TEXT NOT NULL,
    PRIMARY KEY (account, task_list_id, task_id)
) STRICT;

CREATE INDEX tasks_by_due ON tasks (account, due);
CREATE INDEX tasks_by_parent ON tasks (account, task_list_id, parent_id);
