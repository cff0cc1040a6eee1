//! Failure detectors: turning "when did I last hear from this member" into "how sure am I
//! that it is gone".
//!
//! SWIM's own detector is binary: a probe either gets an ack within the protocol period
//! (directly or through `k` helpers) or the member becomes *suspect*. That works, but a
//! fixed timeout is wrong for every member at once: too short for a peer behind a slow or
//! jittery link (false suspicions, which Lifeguard then has to refute), too long for a peer
//! on a quiet LAN (slow detection). rumor therefore also keeps, per member, a
//! *phi-accrual* detector ([`PhiDetector`], Hayashibara et al. 2004): it learns the rhythm
//! at which that member's acks arrive and reports a continuous suspicion level `phi`,
//! where `phi = x` means "if the member were alive, a silence this long would happen with
//! probability about `10^-x`". The caller picks one threshold for the whole cluster and
//! each member gets a timeout fitted to its own history.
//!
//! Like the rest of the core, detectors are sans-IO and deterministic: they never read a
//! clock (every call takes the caller's `now`), never allocate after construction, and
//! never panic on odd input (non-monotonic times, zero or huge durations, NaN
//! thresholds). Because the membership state machine wants *deadlines* rather than
//! repeated polling, the detector can turn a threshold into the instant at which it will
//! be crossed ([`PhiDetector::deadline`]); the inverse of the phi curve is solved once
//! ([`y_for_phi`]) and reused, so the per-arrival cost is a handful of float operations.

mod pause_unit;
mod phi;
mod steady;

pub use pause_unit::pauses_look_like_seconds;
pub use phi::{PhiDetector, PhiParams, phi_from_y, y_for_phi};
pub use steady::steady_silence_to_convict;
