//! `fake`: a fake Aurinko on loopback for trying `run` without an account.

use std::net::SocketAddr;

use super::{Exit, complain};
use crate::fake::FakeAurinko;

pub async fn serve(listen: SocketAddr, events: usize, calendars: usize) -> Exit {
    if !listen.ip().is_loopback() {
        complain("the fake Aurinko only listens on loopback addresses");
        return Exit::Usage;
    }
    let (fake, token) = FakeAurinko::demo(events, calendars.max(1), 7);
    let server = match fake.spawn(listen).await {
        Ok(server) => server,
        Err(e) => {
            complain(format!("cannot listen on {listen}: {e}"));
            return Exit::Failed;
        }
    };
    println!("Fake Aurinko serving {} calendars of {events} events at {}", calendars.max(1), server.base_url());
    println!("Try it with this configuration (aurinko-sync.toml):\n");
    println!("[api]\nbase_url = \"{}\"\n\n[store]\npath = \"fake.db\"\n", server.base_url());
    println!("[[accounts]]\nname = \"fake\"\ntoken_env = \"FAKE_AURINKO_TOKEN\"\n");
    println!("and FAKE_AURINKO_TOKEN={token} aurinko-sync run --catch-up\n\nCtrl-C stops the fake.");
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Exit::Ok
}
