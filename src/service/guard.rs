//! Who may use the service: the bearer token, compared in constant time, and a throttle on
//! client addresses that keep sending wrong tokens (a guess costs a round trip, and after a few
//! failures every request of that address is refused for a while without looking at its token).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens one address may send in [`WINDOW`] before it is refused outright.
pub const MAX_FAILURES: u32 = 10;
/// The throttle's window: counted from an address's first failure.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Addresses tracked at most; beyond (a spread attack), new addresses are not tracked, so the
/// memory stays bounded and the token comparison still stops every guess.
const MAX_TRACKED: usize = 4096;

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// Missing or wrong token.
    Unauthorized,
    /// Too many wrong tokens from this address lately: retry after this many seconds.
    Throttled {
        retry_after_s: u64,
    },
}

#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

#[derive(Debug)]
pub struct Guard {
    token: Option<String>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Guard {
    pub fn new(token: Option<String>) -> Self {
        Self {
            token,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a request's token (`Authorization: Bearer` value, or `?token=` where the caller
    /// accepts one) from address `client`.
    pub fn check(&self, client: Option<IpAddr>, token: Option<&str>) -> Access {
        let Some(expected) = &self.token else {
            return Access::Allowed;
        };
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            // a poisoned lock only means another request panicked mid-update: refuse safely
            return Access::Unauthorized;
        };
        if let Some(ip) = client
            && let Some(f) = failures.get(&ip)
        {
            let elapsed = now.duration_since(f.since);
            if elapsed >= WINDOW {
                failures.remove(&ip);
            } else if f.count >= MAX_FAILURES {
                return Access::Throttled {
                    retry_after_s: (WINDOW - elapsed).as_secs().max(1),
                };
            }
        }
        if token.is_some_and(|t| same_secret(t.as_bytes(), expected.as_bytes())) {
            return Access::Allowed;
        }
        if let Some(ip) = client {
            if failures.len() >= MAX_TRACKED && !failures.contains_key(&ip) {
                failures.retain(|_, f| now.duration_since(f.since) < WINDOW);
            }
            if failures.len() < MAX_TRACKED || failures.contains_key(&ip) {
                failures.entry(ip).or_insert(Failures { count: 0, since: now }).count += 1;
            }
        }
        Access::Unauthorized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_keeps_guessing_is_throttled_and_others_are_not() {
        let guard = Guard::new(Some("s3cret".into()));
        let attacker: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..MAX_FAILURES {
            assert_eq!(guard.check(Some(attacker), Some("guess")), Access::Unauthorized);
        }
        // now even the right token from that address waits out the window
        assert!(matches!(
            guard.check(Some(attacker), Some("s3cret")),
            Access::Throttled { retry_after_s: 1..=10 }
        ));
        assert_eq!(guard.check(Some(other), Some("s3cret")), Access::Allowed);
        assert_eq!(guard.check(Some(other), None), Access::Unauthorized);
        assert_eq!(guard.check(Some(other), Some("s3cret ")), Access::Unauthorized);
        assert_eq!(Guard::new(None).check(Some(attacker), None), Access::Allowed);
    }
}
