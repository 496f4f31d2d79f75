//! Staff accounts: the users file (TOML, outside the warehouse, mode 0600) with each account's
//! name, role, argon2id password hash (PHC string) and the SHA-256 hashes of its API tokens.
//!
//! ```toml
//! [[user]]
//! name = "anna"
//! role = "staff"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! tokens = ["3f1c…"]
//! ```
//!
//! Passwords are hashed with argon2id (slow on purpose: they are guessable). API tokens are 32
//! random bytes, so a plain SHA-256 is enough to keep the file useless to a reader.

use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What can go wrong with the users file or an account.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid users file: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("serialising the users file: {source}")]
    Serialise { source: toml::ser::Error },
    #[error(
        "`{name}` is not a valid user name: use 1 to 64 lower-case letters, digits, `.`, `_` or `-`"
    )]
    BadName { name: String },
    #[error("the password must have at least {min} characters")]
    ShortPassword { min: usize },
    #[error("no user named `{name}`")]
    UnknownUser { name: String },
    #[error("hashing the password: {message}")]
    Hash { message: String },
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The role of an account. Only staff accounts exist today; the public needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Staff,
}

/// One named account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password: String,
    /// Hex SHA-256 of each API token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
}

/// Every account of the users file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
}

impl Users {
    /// The accounts of `path`; none when the file does not exist.
    pub fn load(path: &Path) -> Result<Users, AccountError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(source) => {
                return Err(AccountError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|source| AccountError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Writes the accounts to `path` (mode 0600), through a temporary file renamed into place.
    pub fn save(&self, path: &Path) -> Result<(), AccountError> {
        let text = toml::to_string(self).map_err(|source| AccountError::Serialise { source })?;
        let write_error = |source| AccountError::Write {
            path: path.to_path_buf(),
            source,
        };
        let temporary = path.with_extension("toml.new");
        // A leftover of an interrupted save may have other permissions: start afresh.
        let _ = std::fs::remove_file(&temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(write_error)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        std::fs::rename(&temporary, path).map_err(write_error)
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Adds the staff account `name`, or sets its password when it exists (its tokens stay).
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), AccountError> {
        check_name(name)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AccountError::ShortPassword {
                min: MIN_PASSWORD_CHARS,
            });
        }
        let hash = hash_password(password)?;
        match self.users.iter_mut().find(|u| u.name == name) {
            Some(user) => user.password = hash,
            None => self.users.push(User {
                name: name.to_string(),
                role: Role::Staff,
                password: hash,
                tokens: Vec::new(),
            }),
        }
        Ok(())
    }

    /// Makes a new API token for `name` and keeps only its hash; the token itself is returned
    /// once, to be shown to the user.
    pub fn new_token(&mut self, name: &str) -> Result<String, AccountError> {
        let user = self
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| AccountError::UnknownUser {
                name: name.to_string(),
            })?;
        let token = format!("civica_{}", random_hex(32));
        user.tokens.push(token_hash(&token));
        Ok(token)
    }

    /// The account `name` if `password` is its password. An unknown name costs the same
    /// argon2 work as a known one, so the time of an answer does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        match self.get(name) {
            Some(user) => verify_password(&user.password, password).then_some(user),
            None => {
                verify_password(dummy_hash(), password);
                None
            }
        }
    }

    /// The account holding the API token `token`.
    pub fn by_token(&self, token: &str) -> Option<&User> {
        let hash = token_hash(token);
        self.users.iter().find(|u| {
            u.tokens
                .iter()
                .any(|t| constant_time_eq(t.as_bytes(), hash.as_bytes()))
        })
    }
}

fn check_name(name: &str) -> Result<(), AccountError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(AccountError::BadName {
            name: name.to_string(),
        })
    }
}

/// The argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash {
        message: e.to_string(),
    })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash {
            message: e.to_string(),
        })
}

/// Whether `password` matches the PHC string `stored` (false when `stored` is malformed).
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash of no one's password, verified when the user is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

/// `bytes` random bytes from the operating system's generator, as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// The hex SHA-256 of an API token, as the users file keeps it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_another_does_not() {
        let mut users = Users::default();
        users.set_password("anna", "correct horse battery").unwrap();
        assert!(users.users[0].password.starts_with("$argon2id$"));
        assert!(users.verify("anna", "correct horse battery").is_some());
        assert!(users.verify("anna", "correct horse batterY").is_none());
        assert!(users.verify("bruno", "correct horse battery").is_none());
    }

    #[test]
    fn names_and_short_passwords_are_refused() {
        let mut users = Users::default();
        assert!(matches!(
            users.set_password("Anna Rossi", "long enough password"),
            Err(AccountError::BadName { .. })
        ));
        assert!(matches!(
            users.set_password("anna", "short"),
            Err(AccountError::ShortPassword { .. })
        ));
        assert!(users.users.is_empty());
    }

    #[test]
    fn tokens_are_stored_as_hashes_and_found_by_the_token() {
        let mut users = Users::default();
        users.set_password("anna", "correct horse battery").unwrap();
        let token = users.new_token("anna").unwrap();
        assert!(!users.users[0].tokens.contains(&token));
        assert_eq!(
            users.by_token(&token).map(|u| u.name.as_str()),
            Some("anna")
        );
        assert!(users.by_token("civica_0000").is_none());
        assert!(matches!(
            users.new_token("bruno"),
            Err(AccountError::UnknownUser { .. })
        ));
    }

    #[test]
    fn the_file_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("civica-users.toml");
        assert_eq!(Users::load(&path).unwrap(), Users::default());
        let mut users = Users::default();
        users.set_password("anna", "correct horse battery").unwrap();
        users.new_token("anna").unwrap();
        users.save(&path).unwrap();
        assert_eq!(Users::load(&path).unwrap(), users);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
