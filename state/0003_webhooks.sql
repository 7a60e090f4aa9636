-- aurinko-sync store, version 3: Aurinko account ids and webhook subscriptions.

ALTER TABLE accounts ADD COLUMN aurinko_account_id INTEGER;

CREATE TABLE subscriptions (
    account            TEXT NOT NULL,
    subscription_id    INTEGER NOT NULL,
    resource           TEXT NOT NULL,
    kind               TEXT NOT NULL,
    collection_id      TEXT NOT NULL,
    notification_url   TEXT NOT NULL,
    active             INTEGER NOT NULL,
    fail_since         TEXT,
    fail_description   TEXT,
    lifecycle_event    TEXT,
    lifecycle_error    TEXT,
    lifecycle_at       TEXT,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (account, subscription_id)
) STRICT;

CREATE INDEX subscriptions_by_collection ON subscriptions (account, kind, collection_id);
