//! `run` and `run --catch-up`.

use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::output::{errln, outln};
use super::{Exit, complain, progress_view};
use crate::config::Config;
use crate::sync::{CatchUpReport, CollectionResult, Engine, Finish};

pub async fn run(config_path: &Path, catch_up: bool, instance: Option<String>) -> Exit {
    let mut config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    if let Some(fleet) = &mut config.fleet {
        if catch_up {
            // It would sync accounts the fleet's instances hold, unfenced.
            complain(format!(
                "{}: run --catch-up does not lease accounts: with [fleet], run the daemon (`run`)",
                config_path.display()
            ));
            return Exit::Usage;
        }
        if let Some(id) = instance {
            fleet.instance = id;
        }
        if let Err(e) = crate::config::check_instance_id(&fleet.instance) {
            complain(format!("run --instance: {e}"));
            return Exit::Usage;
        }
    }
    let Some(engine) = open_engine(config).await else { return Exit::Usage };
    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signal(cancel.clone()));
    let writer = engine.writer().clone();
    if catch_up {
        let report = catch_up_with_progress(&engine, &cancel).await;
        print_summary(&report);
        engine.end_run(crate::model::RunMode::CatchUp).await;
        writer.close().await;
        return if report.all_succeeded() { Exit::Ok } else { Exit::Failed };
    }
    let exit = match crate::service::run(Arc::new(engine), cancel).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            complain(e);
            Exit::Usage
        }
    };
    // Part of the stop budget: what is still queued then is not committed,
    // and the next run fetches it again from the stored tokens.
    if tokio::time::timeout(crate::service::WRITER_GRACE, writer.close()).await.is_err() {
        tracing::warn!("the store's writer did not finish in time; the next run resumes from the store");
    }
    exit
}

pub(super) async fn open_engine(config: Config) -> Option<Engine> {
    let (store_config, fleet, keep) = (config.store.clone(), config.fleet.clone(), config.sync.keep_deleted);
    let opened =
        tokio::task::spawn_blocking(move || super::open_store::for_writing(&store_config, fleet.as_ref(), keep)).await;
    let store = match opened {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            complain(e);
            return None;
        }
        Err(e) => {
            complain(format!("opening the store failed: {e}"));
            return None;
        }
    };
    match Engine::new(config, store) {
        Ok(engine) => Some(engine),
        Err(e) => {
            complain(e);
            None
        }
    }
}

/// One catch-up, with the live view on a terminal.
pub(super) async fn catch_up_with_progress(engine: &Engine, cancel: &CancellationToken) -> CatchUpReport {
    let view_stop = CancellationToken::new();
    let view =
        progress_view::enabled().then(|| tokio::spawn(progress_view::show(engine.progress.clone(), view_stop.clone())));
    let report = engine.catch_up(cancel).await;
    view_stop.cancel();
    if let Some(view) = view {
        let _ = view.await;
    }
    report
}

async fn stop_on_signal(cancel: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else { return };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    // The only line about the stop before `stopped`: the service does not repeat it.
    tracing::info!("stop requested: finishing commits under way");
    cancel.cancel();
}

/// Successes on stdout, failures on stderr, one line per collection; the
/// app's account list first, when it failed or stopped some.
pub(super) fn print_summary(report: &CatchUpReport) {
    if let Some(e) = &report.app_error {
        errln!("failed   the app's account list (GET /am/accounts): {e}");
    }
    for (name, why) in &report.app_stopped {
        outln!("stopped  {name}: not synced ({why})");
    }
    for result in &report.results {
        let (ok, line) = summary_line(result);
        if ok {
            outln!("{line}");
        } else {
            errln!("{line}");
        }
    }
}

pub(super) fn summary_line(result: &CollectionResult) -> (bool, String) {
    let r = &result.report;
    let name = match &result.name {
        Some(name) => format!("{} ({name})", result.key),
        None => result.key.to_string(),
    };
    let counts = format!(
        "{} upserted, {} unchanged, {} deleted, {} swept, {} pages, {:.2}s",
        r.stats.upserted,
        r.stats.unchanged,
        r.stats.deleted,
        r.stats.swept,
        r.pages,
        r.duration.as_secs_f64()
    );
    match &r.finish {
        Some(Finish::CaughtUp) => (true, format!("ok       {name}: {counts}")),
        Some(Finish::Removed) => (true, format!("removed  {name}: gone upstream, events purged")),
        Some(Finish::Failed { class, message }) => (false, format!("failed   {name}: {class}: {message}")),
        None => (false, format!("stopped  {name}: interrupted ({counts})")),
    }
}
