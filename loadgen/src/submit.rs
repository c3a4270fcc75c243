//! Open-loop application submissions over the YARN REST API: slot `k` is due at
//! `start + k / rate`, whatever the RM is doing. A generator that waited for the RM would hide
//! exactly the slowness it is meant to measure, so nothing here waits for earlier submissions;
//! what could not be issued on time is counted instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext, Commands, NewApplication};

use crate::world::{AppTrack, LATE, Outcome, World, post, post_json};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Submits at `settings.submit_rate` per second from `start` until `end`.
pub async fn run(world: Arc<World>, start: Instant, end: Instant) {
    let rate = world.settings.submit_rate;
    let in_flight = Arc::new(AtomicU64::new(0));
    let m = &world.metrics;
    let mut issued: u64 = 0;
    loop {
        let now = Instant::now();
        // Every slot due by now is issued, also after the timer woke late (a burst catches up).
        let due = ((now.saturating_duration_since(start).as_secs_f64() * rate).floor() as u64).saturating_add(1);
        while issued < due {
            let slot = start + Duration::from_secs_f64(issued as f64 / rate);
            if slot >= end {
                return;
            }
            issued += 1;
            m.submissions_scheduled.inc();
            let lag = now.saturating_duration_since(slot);
            if lag > LATE {
                m.submissions_late.inc();
            }
            m.max_submit_lag_us.fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
            if in_flight.load(Ordering::Relaxed) >= world.settings.max_in_flight_submissions {
                m.submissions_shed.inc();
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (world, in_flight) = (world.clone(), in_flight.clone());
            tokio::spawn(async move {
                submit_one(&world).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        let next = start + Duration::from_secs_f64(issued as f64 / rate);
        if next >= end {
            return;
        }
        tokio::time::sleep_until(next.into()).await;
    }
}

/// `POST new-application`, then `POST apps` with a launch context the simulated NMs run as a
/// simulated AM.
async fn submit_one(world: &World) {
    let m = &world.metrics;
    let submitted_at = Instant::now();
    let measured = world.in_window(submitted_at);
    let new_app: NewApplication =
        match post_json(&world.http.submit, &world.urls.new_application, Vec::new(), None, REQUEST_TIMEOUT).await {
            Ok(a) => a,
            Err(e) => {
                m.submissions_failed.inc();
                world.error("new-application", &e);
                return;
            }
        };
    if measured {
        m.new_application_rtt.record(submitted_at.elapsed());
    }
    let id = new_app.application_id;
    // Known before the submission is answered: the AM launch may reach us before the 202 does.
    world.apps().insert(
        id,
        AppTrack {
            submitted_at,
            measured,
            accepted: false,
            am_launched_at: None,
            first_container_at: None,
            am_attempts: 0,
            outcome: None,
        },
    );
    let context = ApplicationSubmissionContext {
        application_id: Some(id),
        application_name: Some("loadgen".into()),
        application_type: Some("LOADGEN".into()),
        resource: Some(world.settings.am_resource),
        am_container_spec: AmContainerSpec {
            commands: Some(Commands { command: vec!["simulated-am".into()] }),
            ..Default::default()
        },
        ..Default::default()
    };
    let body = serde_json::to_vec(&context).expect("submission serializes");
    let sent = Instant::now();
    match post(&world.http.submit, &world.urls.submit, body, None, REQUEST_TIMEOUT).await {
        Ok(_) => {
            let answered = Instant::now();
            if measured {
                m.submit_rtt.record(answered - sent);
            }
            if world.in_window(answered) {
                m.submissions_accepted.inc();
            }
            m.total_submissions_accepted.inc();
            world.update_app(id, |track| track.accepted = true);
        }
        Err(e) => {
            m.submissions_failed.inc();
            world.error("submit", &e);
            world.update_app(id, |track| track.outcome = Some(Outcome::Failed(format!("submission refused: {e}"))));
        }
    }
}
