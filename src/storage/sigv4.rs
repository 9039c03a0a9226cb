//! AWS Signature Version 4 presigned URLs with chosen signed headers, for the S3 upload link. `object_store`
//! presigns too, but it never signs `Content-Length`; an upload link must, so that the store itself refuses a
//! body of any other length than the one the quota reserved.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ids::hex;

type HmacSha256 = Hmac<Sha256>;

/// What a presigned URL is made from.
pub struct Presign<'a> {
    pub method: &'a str,
    /// The object's URL without a query (`scheme://host[:port]/path`).
    pub url: &'a url::Url,
    pub region: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub now: DateTime<Utc>,
    pub expires_secs: u64,
    /// Headers the request must carry with exactly these values, besides `host` (always signed).
    pub headers: &'a [(&'a str, String)],
}

/// RFC 3986 percent-encoding as SigV4 wants it: everything but unreserved characters, `/` kept in paths.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail; an empty MAC would only fail the signature.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The presigned URL.
pub fn presign(p: &Presign<'_>) -> url::Url {
    let host = match (p.url.host_str(), p.url.port()) {
        (Some(h), Some(port)) => format!("{h}:{port}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    let date = p.now.format("%Y%m%d").to_string();
    let stamp = p.now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/{}/s3/aws4_request", p.region);

    let mut headers: Vec<(String, String)> =
        p.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())).collect();
    headers.push(("host".into(), host));
    headers.sort();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();

    let mut query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        ("X-Amz-Credential", format!("{}/{scope}", p.access_key_id)),
        ("X-Amz-Date", stamp.clone()),
        ("X-Amz-Expires", p.expires_secs.to_string()),
        ("X-Amz-SignedHeaders", signed_headers.clone()),
    ];
    query.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_query =
        query.iter().map(|(k, v)| format!("{}={}", encode(k, false), encode(v, false))).collect::<Vec<_>>().join("&");
    let path = encode(&url_decoded_path(p.url), true);

    let canonical_request =
        format!("{}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD", p.method);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let key = [date.as_str(), p.region, "s3", "aws4_request"]
        .iter()
        .fold(format!("AWS4{}", p.secret_access_key).into_bytes(), |key, part| hmac(&key, part));
    let signature = hex(&hmac(&key, &string_to_sign));

    let mut url = p.url.clone();
    url.set_query(Some(&format!("{canonical_query}&X-Amz-Signature={signature}")));
    url
}

/// The URL's path as plain text (`url` keeps it percent-encoded; SigV4 encodes it once, itself).
fn url_decoded_path(url: &url::Url) -> String {
    let raw = url.path();
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = raw.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_example_in_the_aws_documentation() {
        // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", the GET example.
        let url: url::Url = "https://examplebucket.s3.amazonaws.com/test.txt".parse().unwrap();
        let signed = presign(&Presign {
            method: "GET",
            url: &url,
            region: "us-east-1",
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            now: "2013-05-24T00:00:00Z".parse().unwrap(),
            expires_secs: 86400,
            headers: &[],
        });
        assert!(
            signed
                .as_str()
                .ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
            "{signed}"
        );
    }

    #[test]
    fn signed_headers_are_listed_in_order() {
        let url: url::Url = "http://127.0.0.1:8333/bucket/rooms/a/b".parse().unwrap();
        let signed = presign(&Presign {
            method: "PUT",
            url: &url,
            region: "us-east-1",
            access_key_id: "k",
            secret_access_key: "s",
            now: Utc::now(),
            expires_secs: 900,
            headers: &[("Content-Type", "text/plain".into()), ("Content-Length", "5".into())],
        });
        assert!(signed.as_str().contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"), "{signed}");
        assert!(signed.as_str().starts_with("http://127.0.0.1:8333/bucket/rooms/a/b?"));
    }
}
