//! Staff accounts: roles, usernames, password rules and the login lockout rule.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a staff account may do. `auditor` reads only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Organizer,
    UnitHandler,
    Expert,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Organizer,
        Role::UnitHandler,
        Role::Expert,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Organizer => "organizer",
            Role::UnitHandler => "unit_handler",
            Role::Expert => "expert",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A username: 3–64 characters of ASCII letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let ok_len = (3..=64).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok_len && ok_chars {
            Ok(Self(s.to_string()))
        } else {
            Err("用户名须为3至64位字母、数字或 . _ -")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The shortest password accepted for a new account.
pub const MIN_PASSWORD_CHARS: usize = 12;

pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err("密码至少需要12个字符");
    }
    if password.chars().count() > 256 {
        return Err("密码不能超过256个字符");
    }
    Ok(())
}

/// The lockout rule: after `max_failures` failed logins in a row the account is locked for
/// `lockout`; a success resets the count. Returns when the lock ends, if one starts now.
pub fn lock_after_failure(
    failures_in_a_row: u32,
    max_failures: u32,
    now: DateTime<Utc>,
    lockout: Duration,
) -> Option<DateTime<Utc>> {
    (failures_in_a_row >= max_failures).then(|| now + lockout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert!(Username::parse("zhang.san").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("张三").is_err());
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long-enough-password").is_ok());
    }

    #[test]
    fn the_fifth_failure_in_a_row_locks() {
        let now = Utc::now();
        let d = Duration::minutes(15);
        assert_eq!(lock_after_failure(4, 5, now, d), None);
        assert_eq!(lock_after_failure(5, 5, now, d), Some(now + d));
    }
}
