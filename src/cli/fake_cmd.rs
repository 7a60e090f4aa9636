//! `fake`: a fake Aurinko on loopback for trying `run` without an account.

use std::net::SocketAddr;

use super::output::outln;
use super::{Exit, complain};
use aurinko_fake::FakeAurinko;

pub async fn serve(listen: SocketAddr, events: usize, calendars: usize) -> Exit {
    if !listen.ip().is_loopback() {
        complain("the fake Aurinko only listens on loopback addresses");
        return Exit::Usage;
    }
    // Ctrl-C is caught from before the first line on: a script (or a test)
    // that reads the first line may stop the fake at once.
    #[cfg(unix)]
    let mut interrupt = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        Ok(signal) => signal,
        Err(e) => {
            complain(format!("cannot catch Ctrl-C: {e}"));
            return Exit::Failed;
        }
    };
    let (fake, token) = FakeAurinko::demo(events, calendars.max(1), 7);
    let server = match fake.spawn(listen).await {
        Ok(server) => server,
        Err(e) => {
            complain(format!("cannot listen on {listen}: {e}"));
            return Exit::Failed;
        }
    };
    outln!("Fake Aurinko serving {} calendars of {events} events at {}", calendars.max(1), server.base_url());
    outln!("Try it with this configuration (aurinko-sync.toml):\n");
    outln!("[api]\nbase_url = \"{}\"\n\n[store]\npath = \"fake.db\"\n", server.base_url());
    outln!("[[accounts]]\nname = \"fake\"\ntoken_env = \"FAKE_AURINKO_TOKEN\"\n");
    outln!("and FAKE_AURINKO_TOKEN={token} aurinko-sync run --catch-up\n\nCtrl-C stops the fake.");
    #[cfg(unix)]
    interrupt.recv().await;
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Exit::Ok
}
