//! Signed-in staff: sessions kept in memory (a restart signs everyone out), each a random id
//! (the `civica_session` cookie), the account, the CSRF token of its forms and an expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::accounts::random_hex;

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// Sessions kept at most: past it the oldest are dropped (bounds memory under abuse).
const MAX_SESSIONS: usize = 10_000;

/// One signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// Sent back in a hidden field by every form that changes something.
    pub csrf: String,
    expires: Instant,
}

/// The sessions of the server.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new() -> Self {
        Sessions::default()
    }

    /// Opens a session for `user`; returns its id.
    pub fn open(&self, user: &str) -> String {
        let id = random_hex(32);
        let session = Session {
            user: user.to_string(),
            csrf: random_hex(32),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        if let Ok(mut inner) = self.inner.lock() {
            let now = Instant::now();
            inner.retain(|_, s| s.expires > now);
            if inner.len() >= MAX_SESSIONS
                && let Some(oldest) = inner
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
            {
                inner.remove(&oldest);
            }
            inner.insert(id.clone(), session);
        }
        id
    }

    /// The session `id` if it exists and has not expired.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut inner = self.inner.lock().ok()?;
        match inner.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                inner.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session `id`.
    pub fn close(&self, id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_until_it_is_closed() {
        let sessions = Sessions::new();
        let id = sessions.open("anna");
        let other = sessions.open("anna");
        assert_ne!(id, other);
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.user, "anna");
        assert_ne!(session.csrf, sessions.get(&other).unwrap().csrf);
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
        assert!(sessions.get(&other).is_some());
        assert!(sessions.get("not-a-session").is_none());
    }
}
