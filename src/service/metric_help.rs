//! The `# HELP` of every series the recorder exports: it writes HELP only
//! for described metrics, so each is described here, once, at start. Names
//! follow Prometheus conventions: base units (`_seconds`), `_total` on
//! counters; labels take values from closed sets (kinds, outcomes,
//! reasons, endpoints, HTTP statuses) or the configured account names.
//! The series computed at each scrape carry their own HELP
//! (`collection_metrics`, `discovery_health`).

/// Name and help of each counter the service increments.
const COUNTERS: [(&str, &str); 13] = [
    ("aurinko_sync_records_upserted_total", "Rows inserted or rewritten, by account and kind."),
    (
        "aurinko_sync_records_deleted_total",
        "Rows removed (deleted stream, reconciling sweeps, purges), by account and kind.",
    ),
    (
        "aurinko_sync_reprovisions_total",
        "Provisionings after a collection's first (expired or refused tokens, window rolls).",
    ),
    (
        "aurinko_sync_pages_without_delta_token_total",
        "Last pages that carried no nextDeltaToken; the stream kept the delta token its drain started from.",
    ),
    ("aurinko_sync_passes_total", "Passes by account, kind and result (caught_up, failed, removed, stopped)."),
    ("aurinko_sync_requests_total", "Requests to Aurinko by account, endpoint and HTTP status (error: no answer)."),
    ("aurinko_sync_rate_limited_total", "Answers 429 (too many requests) by account."),
    ("aurinko_sync_store_transactions_total", "Transactions of the store's writer."),
    ("aurinko_sync_store_writes_total", "Writes (pages, outcomes) the writer's transactions held."),
    ("aurinko_sync_webhook_requests_total", "Webhook requests answered 200, by outcome."),
    ("aurinko_sync_webhook_refused_total", "Webhook requests refused, by reason."),
    (
        "aurinko_sync_webhook_late_total",
        "Validly signed notifications whose timestamp was outside webhook.tolerance_secs.",
    ),
    ("aurinko_sync_listener_shed_total", "Connections the listener closed at its cap, by reason."),
];

/// Describes every series the recorder exports.
pub fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(name, help);
    }
    metrics::describe_gauge!("aurinko_sync_listener_connections", "Connections the listener holds.");
}
