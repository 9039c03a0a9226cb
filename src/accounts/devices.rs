//! Device cookies: a browser that signed in to an account once carries a signed token naming that account,
//! so its later logins are counted apart from the per-account limit that strangers can exhaust (ASVS 6.3.1:
//! rate limits must not lock real users out).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::Result;
use crate::ids;

/// Where the instance keeps the key that signs device cookies (made on first use).
const KEY_NAME: &str = "device_cookie_key";

type HmacSha256 = Hmac<Sha256>;

async fn key(app: &App) -> Result<String> {
    app.store().instance_value_or_insert(KEY_NAME, &ids::new_secret()).await
}

fn mac(key: &str, email_key: &str, device_id: &str) -> String {
    let mut mac = match HmacSha256::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; an empty MAC never verifies.
        Err(_) => return String::new(),
    };
    mac.update(format!("confctl-device\n{email_key}\n{device_id}").as_bytes());
    crate::ids::hex(&mac.finalize().into_bytes())
}

/// The device id in `cookie` when it is a valid device cookie for this account (lower-cased email).
pub async fn verify(app: &App, cookie: &str, email_key: &str) -> Result<Option<String>> {
    let Some((device_id, given)) = cookie.split_once('.') else {
        return Ok(None);
    };
    if device_id.is_empty() || device_id.len() > 64 || given.len() != 64 {
        return Ok(None);
    }
    let expected = mac(&key(app).await?, email_key, device_id);
    let valid = !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()));
    Ok(valid.then(|| device_id.to_owned()))
}

/// The cookie value for this browser and account: the device keeps its id when it already had one.
pub async fn issue(app: &App, email_key: &str, device_id: Option<String>) -> Result<String> {
    let device_id = device_id.unwrap_or_else(ids::new_id);
    let signature = mac(&key(app).await?, email_key, &device_id);
    Ok(format!("{device_id}.{signature}"))
}
