-- aurinko-sync's store in PostgreSQL: the same tables and columns as the
-- SQLite store (state/0001-0009), as one first migration. Records' JSON is
-- jsonb, so it can be queried in place; instants are timestamptz; flags are
-- boolean. Tables are created in the configured schema (the connection's
-- search_path).

CREATE TABLE accounts (
    name                     text PRIMARY KEY,
    auth_error               text,
    auth_error_at            timestamptz,
    updated_at               timestamptz NOT NULL,
    aurinko_account_id       bigint,
    discovery_error          text,
    discovery_error_class    text,
    discovery_failing_since  timestamptz,
    discovery_failures       bigint NOT NULL DEFAULT 0,
    discovery_success_at     timestamptz
);

CREATE TABLE calendars (
    account         text NOT NULL,
    calendar_id     text NOT NULL,
    name            text,
    is_primary      boolean NOT NULL DEFAULT false,
    access_role     text,
    raw             jsonb NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    removed_at      timestamptz,
    PRIMARY KEY (account, calendar_id)
);

CREATE TABLE task_lists (
    account         text NOT NULL,
    task_list_id    text NOT NULL,
    title           text,
    is_default      boolean NOT NULL DEFAULT false,
    raw             jsonb NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    removed_at      timestamptz,
    PRIMARY KEY (account, task_list_id)
);

CREATE TABLE folders (
    account        text NOT NULL,
    folder_id      text NOT NULL,
    name           text,
    full_name      text,
    role           text,
    parent_id      text,
    is_folder      boolean,
    is_label       boolean,
    raw            jsonb NOT NULL,
    first_seen_at  timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    removed_at     timestamptz,
    PRIMARY KEY (account, folder_id)
);

CREATE TABLE sync_state (
    account                       text NOT NULL,
    kind                          text NOT NULL,
    collection_id                 text NOT NULL,
    phase                         text NOT NULL,
    window_min                    timestamptz,
    window_max                    timestamptz,
    generation                    bigint NOT NULL DEFAULT 0,
    reconciling                   boolean NOT NULL DEFAULT false,
    updated_delta_token           text,
    updated_page_token            text,
    deleted_delta_token           text,
    deleted_page_token            text,
    last_attempt_at               timestamptz,
    last_success_at               timestamptz,
    last_error                    text,
    last_error_class              text,
    consecutive_failures          bigint NOT NULL DEFAULT 0,
    next_attempt_at               timestamptz,
    updated_at                    timestamptz NOT NULL,
    permanent_failures            bigint NOT NULL DEFAULT 0,
    reprovisioned_after_failures  boolean NOT NULL DEFAULT false,
    reprovision_reason            text,
    reprovisioned_at              timestamptz,
    resync_requested              bigint NOT NULL DEFAULT 0,
    resync_handled                bigint NOT NULL DEFAULT 0,
    range_days                    text,
    PRIMARY KEY (account, kind, collection_id)
);

CREATE TABLE events (
    account          text NOT NULL,
    calendar_id      text NOT NULL,
    event_id         text NOT NULL,
    etag             text,
    subject          text,
    start_time       timestamptz,
    end_time         timestamptz,
    all_day          boolean NOT NULL DEFAULT false,
    last_modified    timestamptz,
    ical_uid         text,
    recurrence_type  text,
    raw              jsonb NOT NULL,
    generation       bigint NOT NULL,
    synced_at        timestamptz NOT NULL,
    PRIMARY KEY (account, calendar_id, event_id)
);
CREATE INDEX events_by_start ON events (account, calendar_id, start_time);
CREATE INDEX events_by_time ON events (start_time);

CREATE TABLE messages (
    account              text NOT NULL,
    message_id           text NOT NULL,
    thread_id            text,
    folder_id            text,
    internet_message_id  text,
    subject              text,
    from_address         text,
    from_name            text,
    received_at          timestamptz,
    sys_labels           jsonb,
    has_attachments      boolean NOT NULL DEFAULT false,
    raw                  jsonb NOT NULL,
    generation           bigint NOT NULL,
    synced_at            timestamptz NOT NULL,
    PRIMARY KEY (account, message_id)
);
CREATE INDEX messages_by_received ON messages (account, received_at);
CREATE INDEX messages_by_thread ON messages (account, thread_id);

CREATE TABLE contacts (
    account       text NOT NULL,
    contact_id    text NOT NULL,
    etag          text,
    display_name  text,
    emails        jsonb,
    raw           jsonb NOT NULL,
    generation    bigint NOT NULL,
    synced_at     timestamptz NOT NULL,
    PRIMARY KEY (account, contact_id)
);

CREATE TABLE tasks (
    account        text NOT NULL,
    task_list_id   text NOT NULL,
    task_id        text NOT NULL,
    etag           text,
    title          text,
    status         text,
    due            timestamptz,
    completed      timestamptz,
    parent_id      text,
    raw            jsonb NOT NULL,
    generation     bigint NOT NULL,
    synced_at      timestamptz NOT NULL,
    PRIMARY KEY (account, task_list_id, task_id)
);
CREATE INDEX tasks_by_due ON tasks (account, due);
CREATE INDEX tasks_by_parent ON tasks (account, task_list_id, parent_id);

CREATE TABLE subscriptions (
    account            text NOT NULL,
    subscription_id    bigint NOT NULL,
    resource           text NOT NULL,
    kind               text NOT NULL,
    collection_id      text NOT NULL,
    notification_url   text NOT NULL,
    active             boolean NOT NULL,
    fail_since         timestamptz,
    fail_description   text,
    lifecycle_event    text,
    lifecycle_error    text,
    lifecycle_at       timestamptz,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (account, subscription_id)
);
CREATE INDEX subscriptions_by_collection ON subscriptions (account, kind, collection_id);
