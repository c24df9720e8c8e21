//! When a delivery is attempted next: the destination's `retry` waits, jittered, stretched to a
//! `Retry-After` the destination asked for (capped), then `failed`.

use std::time::Duration;

use crate::store::outbox::Next;

use super::attempt::Attempted;

/// Waits are spread by up to this share either way, so that deliveries that failed together do
/// not all come back at the same instant (svix: ±20 %).
const JITTER: f64 = 0.2;

/// A `Retry-After` is honoured up to the schedule's longest wait, and at least up to this (so a
/// short schedule still lets a destination ask for a minute).
const MIN_RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// What attempt `number` (1-based) leaves its delivery in, given what came of it, at `now`
/// (Unix ms). `random` is a uniform value in [0, 1) for the jitter.
pub fn next(retry: &[Duration], number: u32, outcome: &Attempted, now: i64, random: f64) -> Next {
    if outcome.delivered() {
        return Next::Delivered;
    }
    let index = usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX);
    let Some(base) = retry.get(index) else {
        return Next::Failed;
    };
    let spread = 1.0 + JITTER * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    let mut wait = base.mul_f64(spread);
    if let Some(asked) = outcome.retry_after {
        let cap = retry
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .max(MIN_RETRY_AFTER_CAP);
        wait = wait.max(asked.min(cap));
    }
    let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    Next::RetryAt(now.saturating_add(wait_ms))
}

/// A uniform value in [0, 1), from the operating system's random source (through a v4 UUID:
/// no generator of its own to seed).
pub fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75;
    // 53 random bits over 2^53.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<u16>, retry_after: Option<u64>) -> Attempted {
        Attempted {
            status,
            error: status
                .is_none()
                .then_some(super::super::attempt::ErrorKind::Connect),
            response: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
            duration: Duration::ZERO,
        }
    }

    const SCHEDULE: [Duration; 2] = [Duration::from_secs(5), Duration::from_secs(300)];

    #[test]
    fn a_2xx_is_delivered_whatever_the_attempt() {
        assert_eq!(
            next(&SCHEDULE, 9, &outcome(Some(204), None), 0, 0.5),
            Next::Delivered
        );
    }

    #[test]
    fn failures_follow_the_schedule_then_fail() {
        assert_eq!(
            next(&SCHEDULE, 1, &outcome(Some(500), None), 1000, 0.5),
            Next::RetryAt(6000)
        );
        assert_eq!(
            next(&SCHEDULE, 2, &outcome(None, None), 0, 0.5),
            Next::RetryAt(300_000)
        );
        assert_eq!(
            next(&SCHEDULE, 3, &outcome(Some(500), None), 0, 0.5),
            Next::Failed
        );
        assert_eq!(
            next(&[], 1, &outcome(Some(500), None), 0, 0.5),
            Next::Failed
        );
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let low = next(&SCHEDULE, 1, &outcome(Some(500), None), 0, 0.0);
        let high = next(&SCHEDULE, 1, &outcome(Some(500), None), 0, 0.999_999);
        assert_eq!(low, Next::RetryAt(4000));
        assert!(
            matches!(high, Next::RetryAt(t) if (5990..=6000).contains(&t)),
            "{high:?}"
        );
        for _ in 0..1000 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }

    #[test]
    fn retry_after_stretches_a_wait_up_to_the_longest_one() {
        // 429 with Retry-After: 120 s, longer than the 5 s due: 120 s.
        assert_eq!(
            next(&SCHEDULE, 1, &outcome(Some(429), Some(120)), 0, 0.5),
            Next::RetryAt(120_000)
        );
        // Shorter than the schedule's wait: the schedule's.
        assert_eq!(
            next(&SCHEDULE, 2, &outcome(Some(503), Some(1)), 0, 0.5),
            Next::RetryAt(300_000)
        );
        // A day asked for: capped at the longest wait of the schedule.
        assert_eq!(
            next(&SCHEDULE, 1, &outcome(Some(429), Some(86_400)), 0, 0.5),
            Next::RetryAt(300_000)
        );
        // Even after the last attempt, a Retry-After does not keep the delivery going.
        assert_eq!(
            next(&SCHEDULE, 3, &outcome(Some(429), Some(10)), 0, 0.5),
            Next::Failed
        );
    }
}
