//! Object storage for shared files, transcripts and artifacts: a directory inside the data dir (default) or any S3-compatible store, behind
//! one `object_store` interface. S3 uploads and downloads go straight between browser and store through
//! presigned URLs; the local backend gets the same shape through HMAC-signed URLs on confctl itself.

mod sigv4;

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::signer::{HeaderValue, SignedUrlOptions};
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{Config, StorageBackend};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// A presigned PUT lives this long: enough for 100 MB over a slow campus Wi-Fi.
pub const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);
/// A presigned GET lives this long: the browser follows the redirect at once.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(5 * 60);

/// The configured object store.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Local,
    S3(Arc<object_store::aws::AmazonS3>, Arc<S3Upload>),
}

/// What the upload link's own SigV4 presigning needs (see `sigv4`).
#[derive(Debug)]
struct S3Upload {
    /// The bucket's base URL: `endpoint/bucket/` (path style) or `scheme://bucket.host/`.
    base: url::Url,
    region: String,
    access_key_id: String,
    secret_access_key: Secret,
}

/// How the browser uploads a file.
#[derive(Debug, Clone)]
pub enum UploadTarget {
    /// A presigned URL on the object store.
    Presigned(url::Url),
    /// A path on confctl itself (local backend); the caller adds the HMAC signature.
    Local,
}

impl Storage {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let files = &config.files;
        match files.backend {
            StorageBackend::Local => {
                let dir = files.local_dir.clone().unwrap_or_else(|| config.data_dir.join("files"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot create the file store {}: {e}", dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot open the file store {}: {e}", dir.display()))?;
                Ok(Self { store: Arc::new(store), kind: Kind::Local })
            }
            StorageBackend::S3 => {
                let endpoint = files.s3_endpoint.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned());
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&files.s3_bucket)
                    .with_region(&files.s3_region)
                    .with_access_key_id(&files.s3_access_key_id)
                    .with_secret_access_key(files.s3_secret_access_key.expose())
                    .with_virtual_hosted_style_request(!files.s3_path_style);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint);
                }
                let s3 = Arc::new(builder.build().map_err(|e| anyhow::anyhow!("invalid S3 settings: {e}"))?);
                let upload = S3Upload {
                    base: bucket_url(
                        files.s3_endpoint.as_ref(),
                        &files.s3_bucket,
                        &files.s3_region,
                        files.s3_path_style,
                    )?,
                    region: files.s3_region.clone(),
                    access_key_id: files.s3_access_key_id.clone(),
                    secret_access_key: files.s3_secret_access_key.clone(),
                };
                Ok(Self { store: s3.clone(), kind: Kind::S3(s3, Arc::new(upload)) })
            }
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local)
    }

    /// Where the browser sends the `size` bytes of `key`, declared as `content_type`, within `ttl`.
    pub async fn upload_target(&self, key: &str, content_type: &str, size: u64, ttl: Duration) -> Result<UploadTarget> {
        match &self.kind {
            Kind::Local => Ok(UploadTarget::Local),
            Kind::S3(_, upload) => {
                if HeaderValue::from_str(content_type).is_err() {
                    return Err(Error::invalid("invalid_content_type", "invalid content type"));
                }
                let url = upload.base.join(key).map_err(|_| Error::internal("an object key is not a URL path"))?;
                // The content type and the exact length are part of the signature: the store refuses a PUT
                // of any other length (a browser sets Content-Length from the body itself), and the stored
                // object has the declared type.
                let headers = [("content-type", content_type.to_owned()), ("content-length", size.to_string())];
                Ok(UploadTarget::Presigned(sigv4::presign(&sigv4::Presign {
                    method: "PUT",
                    url: &url,
                    region: &upload.region,
                    access_key_id: &upload.access_key_id,
                    secret_access_key: upload.secret_access_key.expose(),
                    now: chrono::Utc::now(),
                    expires_secs: ttl.as_secs(),
                    headers: &headers,
                })))
            }
        }
    }

    /// A short-lived URL that makes the store itself serve the file as a download with the original name.
    /// `None` for the local backend (confctl streams the file itself).
    pub async fn download_url(
        &self,
        key: &str,
        content_disposition: &str,
        content_type: &str,
    ) -> Result<Option<url::Url>> {
        match &self.kind {
            Kind::Local => Ok(None),
            Kind::S3(s3, _) => {
                let options = SignedUrlOptions::new().with_query([
                    ("response-content-disposition", content_disposition),
                    ("response-content-type", content_type),
                ]);
                let url = s3
                    .signed_url_opts(http::Method::GET, &ObjectPath::from(key), DOWNLOAD_TTL, &options)
                    .await
                    .map_err(unavailable)?;
                Ok(Some(url))
            }
        }
    }

    /// The stored size of an object, or `None` when there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Streams an upload into the store, refusing more than `max` bytes (the local backend's PUT, where `max`
    /// is the declared size).
    pub async fn write_stream<S, E>(&self, key: &str, mut body: S, max: u64) -> Result<u64>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        let upload = self.store.put_multipart(&ObjectPath::from(key)).await.map_err(unavailable)?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(err) => {
                    let _ = writer.abort().await;
                    tracing::info!(error = %err, "an upload's body ended with an error");
                    return Err(Error::invalid(
                        "upload_interrupted",
                        "the upload was interrupted; send the file again",
                    ));
                }
            };
            written += chunk.len() as u64;
            if written > max {
                // Aborting discards the parts written so far: nothing past the limit is ever kept.
                let _ = writer.abort().await;
                return Err(Error::TooLarge {
                    code: "upload_too_large",
                    message: format!("the upload has more than the {max} bytes declared for it; it was discarded"),
                });
            }
            writer.put(chunk);
        }
        writer.finish().await.map_err(unavailable)?;
        Ok(written)
    }

    /// The object's bytes as a stream (the local backend's download).
    pub async fn read_stream(
        &self,
        key: &str,
    ) -> Result<futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => Ok(result.into_stream()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::not_found("file_not_found", "the file is gone from storage"))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Copies an object into a file at `path` (created or truncated), chunk by chunk; returns its size.
    pub async fn download_to(&self, key: &str, path: &std::path::Path) -> Result<u64> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = self.read_stream(key).await?;
        let write_failed = |e: std::io::Error| Error::internal(format!("writing {}: {e}", path.display()));
        let mut file = tokio::fs::File::create(path).await.map_err(write_failed)?;
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(unavailable)?;
            file.write_all(&chunk).await.map_err(write_failed)?;
            size += chunk.len() as u64;
        }
        file.flush().await.map_err(write_failed)?;
        Ok(size)
    }

    /// Stores a small object whole (transcripts).
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.store.put(&ObjectPath::from(key), bytes::Bytes::from(bytes).into()).await.map_err(unavailable)?;
        Ok(())
    }

    /// Reads a small text object whole.
    pub async fn get_text(&self, key: &str) -> Result<String> {
        let bytes = match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => result.bytes().await.map_err(unavailable)?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::not_found("file_not_found", "the file is gone from storage"));
            }
            Err(err) => return Err(unavailable(err)),
        };
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::internal("a stored transcript is not UTF-8"))
    }

    /// Writes, reads back and deletes a small object (for `confctl doctor` and start-up checks).
    pub async fn probe(&self) -> Result<()> {
        // At the top level, so the local backend leaves no directory behind (owned by whoever ran doctor).
        let key = format!("confctl-probe-{}", crate::ids::new_id());
        let path = ObjectPath::from(key.as_str());
        self.store.put(&path, bytes::Bytes::from_static(b"probe").into()).await.map_err(unavailable)?;
        let back = self.store.get(&path).await.map_err(unavailable)?.bytes().await.map_err(unavailable)?;
        self.store.delete(&path).await.map_err(unavailable)?;
        if back.as_ref() != b"probe" {
            return Err(Error::unavailable("storage_corrupt", "the file store returned different bytes than written"));
        }
        Ok(())
    }
}

/// The bucket's base URL as object_store addresses it: `endpoint/bucket/` in path style, else the bucket as a
/// subdomain of the endpoint (AWS itself when no endpoint is set).
fn bucket_url(endpoint: Option<&url::Url>, bucket: &str, region: &str, path_style: bool) -> anyhow::Result<url::Url> {
    let endpoint = match endpoint {
        Some(url) => url.clone(),
        None => format!("https://s3.{region}.amazonaws.com").parse()?,
    };
    let mut base = endpoint.clone();
    if path_style {
        let path = format!("{}/{bucket}/", endpoint.path().trim_end_matches('/'));
        base.set_path(&path);
    } else {
        let host = endpoint.host_str().ok_or_else(|| anyhow::anyhow!("files.s3_endpoint has no host"))?;
        base.set_host(Some(&format!("{bucket}.{host}")))
            .map_err(|e| anyhow::anyhow!("files.s3_bucket cannot be a host name: {e}"))?;
        base.set_path("/");
    }
    Ok(base)
}

fn unavailable(err: object_store::Error) -> Error {
    tracing::warn!(error = %err, "file storage call failed");
    Error::unavailable("storage_unavailable", "the file store is not answering; try again shortly")
}

type HmacSha256 = Hmac<Sha256>;

/// Signs a local-storage URL: method, file id and expiry, with the instance's signing key.
pub fn local_signature(key: &Secret, method: &str, file_id: &str, expires: i64) -> String {
    let mut mac = match HmacSha256::new_from_slice(key.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{method}\n{file_id}\n{expires}").as_bytes());
    crate::ids::hex(&mac.finalize().into_bytes())
}

/// Checks a local-storage URL's signature and expiry.
pub fn verify_local_signature(key: &Secret, method: &str, file_id: &str, expires: i64, signature: &str) -> Result<()> {
    let expected = local_signature(key, method, file_id, expires);
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return Err(Error::forbidden("bad_signature", "this upload link is not valid"));
    }
    if crate::time::now_ms() / 1000 > expires {
        return Err(Error::forbidden("link_expired", "this upload link has expired; start the upload again"));
    }
    Ok(())
}
