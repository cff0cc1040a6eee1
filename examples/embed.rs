//! Embedding rumor in an existing tokio service: the ten lines between the markers.
//!
//! ```text
//! cargo run --example embed                        # a cluster of one
//! cargo run --example embed -- 127.0.0.1:7946      # join a node already running there
//! cargo run --example embed -- localhost:7946       # names work too
//! ```
//!
//! The service owns shutdown (here its `CancellationToken` cancelled after a few
//! seconds; in a real service, its signal handling): rumor installs no signal handler.
//! Cancelling the token rumor was given takes the node out of readiness, keeps it
//! serving for the drain, gossips Leave and stops: peers see it Left.

use std::time::Duration;

use rumor::{CancellationToken, Config, RuntimeBuilder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = CancellationToken::new(); // the service's own
    let seeds: Vec<String> = std::env::args().skip(1).collect();

    // ---- rumor: about ten lines --------------------------------------------------
    let members = RuntimeBuilder::new(format!("svc-{}", std::process::id()))
        .bind("127.0.0.1:0".parse()?)
        .seeds(seeds)
        .config(Config::local())
        .cancel_token(shutdown.child_token())
        .drain(Duration::from_millis(500))
        .start()
        .await?;
    let mut events = members.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("membership: {event:?}");
        }
    });
    // -------------------------------------------------------------------------------

    // The service runs; it asks rumor whenever it needs the member list or health.
    let service = {
        let members = members.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                let ready = members.health().readiness();
                println!(
                    "{} at {}: {} peers, ready: {}",
                    members.name(),
                    members.advertise_addr(),
                    members.members().len(),
                    ready.reason
                );
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Graceful exit: the service cancels its token; rumor drains, leaves and stops.
    shutdown.cancel();
    members.stopped().await;
    service.await?;
    Ok(())
}
