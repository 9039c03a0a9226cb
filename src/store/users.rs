//! Queries on `users`.

use serde::{Deserialize, Serialize};

use super::{DbResult, Flag, Store, UnknownValue};
use crate::error::{Error, Result};

/// What an account may do. Guests have no account at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Admin,
    Host,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Host => "HOST",
        }
    }
    /// Parses `ADMIN`/`HOST` in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "ADMIN" => Some(Role::Admin),
            "HOST" => Some(Role::Host),
            _ => None,
        }
    }
}

impl TryFrom<String> for Role {
    type Error = UnknownValue;
    fn try_from(text: String) -> std::result::Result<Self, UnknownValue> {
        Self::parse(&text).ok_or_else(|| UnknownValue::new("role", text))
    }
}

/// A user row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "Flag")]
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What creating a user needs. `role: None` means "ADMIN if this is the first account ever, else HOST".
#[derive(Debug)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Option<Role>,
}

macro_rules! columns {
    () => {
        "id, email, display_name, password_hash, role, disabled, created_at, updated_at"
    };
}

impl Store {
    /// Creates a user. The "first account becomes ADMIN" rule is decided inside the transaction through a
    /// unique claim row, so two registrations racing on an empty instance cannot both become admin.
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<UserRecord> {
        let now = crate::time::now_ms();
        let id = new.id.to_owned();
        let (email, display_name, password_hash) =
            (new.email.to_owned(), new.display_name.to_owned(), new.password_hash.to_owned());
        let wanted_role = new.role;
        self.write_atomic(move |tx| {
            Box::pin(async move {
                let claimed = sqlx::query(
                    "INSERT INTO instance_state (key, value) VALUES ('first_account', $1) ON CONFLICT (key) DO NOTHING",
                )
                .bind(&id)
                .execute(&mut *tx)
                .await
                .db("user")?
                .rows_affected()
                    == 1;
                let role = wanted_role.unwrap_or(if claimed { Role::Admin } else { Role::Host });
                sqlx::query(concat!(
                    "INSERT INTO users (",
                    columns!(),
                    ", email_lower) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&id)
                .bind(&email)
                .bind(&display_name)
                .bind(&password_hash)
                .bind(role.as_str())
                .bind(0_i32)
                .bind(now)
                .bind(now)
                .bind(email.to_lowercase())
                .execute(&mut *tx)
                .await
                // An email (in any case) that has an account already is `email_taken` (see `UNIQUE_KEYS`).
                .db("user")?;
                if claimed {
                    // The setup code has done its job once the first account exists.
                    sqlx::query("DELETE FROM instance_state WHERE key = 'setup_code'")
                        .execute(&mut *tx)
                        .await
                        .db("user")?;
                }
                Ok(())
            })
        })
        .await?;
        self.user_by_id(new.id).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<UserRecord> {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .db("user")?
            .ok_or_else(|| Error::not_found("user_not_found", "no such user"))
    }

    /// Looks a user up by email, case-insensitively.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE email_lower = $1"))
            .bind(email.to_lowercase())
            .fetch_optional(self.reader())
            .await
            .db("user")
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM users ORDER BY created_at, email_lower"))
            .fetch_all(self.reader())
            .await
            .db("user")
    }

    pub async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.reader()).await.db("user")
    }

    pub async fn set_user_role(&self, id: &str, role: Role) -> Result<()> {
        self.update_user(sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE id = $1"), id, role.as_str())
            .await
    }

    pub async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<()> {
        let n = self
            .write(
                sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(i32::from(disabled))
                    .bind(crate::time::now_ms()),
            )
            .await
            .db("user")?
            .rows_affected();
        if n == 0 { Err(Error::not_found("user_not_found", "no such user")) } else { Ok(()) }
    }

    pub async fn set_user_password_hash(&self, id: &str, hash: &str) -> Result<()> {
        self.update_user(sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1"), id, hash)
            .await
    }

    async fn update_user(&self, query: super::Statement, id: &str, value: &str) -> Result<()> {
        let n = self
            .write(query.bind(id.to_owned()).bind(value.to_owned()).bind(crate::time::now_ms()))
            .await
            .db("user")?
            .rows_affected();
        if n == 0 { Err(Error::not_found("user_not_found", "no such user")) } else { Ok(()) }
    }
}
