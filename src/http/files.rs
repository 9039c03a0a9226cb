//! Shared files over HTTP: upload tickets, the local backend's signed PUT, completion, listing, download
//! and removal.

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;

use super::SESSION_HEADER;
use super::error::ApiResult;
use super::extract::{Client, Json, Path, Query, SignedIn};
use super::rooms::{HostedRoom, RoomMember};
use crate::app::App;
use crate::files::{self, Download, UploadRequest};

#[derive(Debug, Deserialize)]
pub struct FilePath {
    #[serde(rename = "roomId")]
    _room_id: String,
    #[serde(rename = "fileId")]
    file_id: String,
}

pub async fn request_upload(
    State(app): State<App>,
    member: RoomMember,
    Json(body): Json<UploadRequest>,
) -> ApiResult<impl IntoResponse> {
    let ticket = files::request_upload(&app, &member.room, &member.member, body).await?;
    Ok((StatusCode::CREATED, axum::Json(ticket)))
}

pub async fn complete(
    State(app): State<App>,
    member: RoomMember,
    Path(p): Path<FilePath>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(files::complete(&app, &member.room, &member.member, &p.file_id).await?))
}

pub async fn list(State(app): State<App>, member: RoomMember) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "files": files::list(&app, &member.room).await? })))
}

pub async fn delete(
    State(app): State<App>,
    Client(client): Client,
    hosted: HostedRoom,
    Path(p): Path<FilePath>,
) -> ApiResult<StatusCode> {
    files::delete(&app, &hosted.room, &p.file_id, &hosted.auth.user.actor(client.ip)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    expires: i64,
    sig: String,
}

/// `PUT /api/files/{fileId}/content?expires=…&sig=…`: the local backend's stand-in for a presigned PUT.
pub async fn upload_content(
    State(app): State<App>,
    Path(file_id): Path<String>,
    Query(q): Query<SignedQuery>,
    body: Body,
) -> ApiResult<StatusCode> {
    files::receive_local_upload(&app, &file_id, q.expires, &q.sig, body.into_data_stream()).await?;
    Ok(StatusCode::OK)
}

/// `GET /api/files/{fileId}/download`: for members of the file's room only.
pub async fn download(
    State(app): State<App>,
    Path(file_id): Path<String>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let (mut parts, _body) = request.into_parts();
    let (file, room) = files::room_of(&app, &file_id).await?;
    let auth = SignedIn::from_request_parts(&mut parts, &app).await.ok().map(|SignedIn(a)| a);
    let session = parts.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    crate::admission::member(&app, &room, auth, session).await?;
    respond(&app, file).await
}

/// A stored file as a download: a redirect to a presigned URL, or the bytes streamed.
pub(super) async fn respond(app: &App, file: crate::store::FileRecord) -> ApiResult<Response> {
    let mut headers = HeaderMap::new();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    match files::download(app, file).await? {
        Download::Redirect(url) => {
            let location = HeaderValue::from_str(&url)
                .map_err(|_| crate::Error::internal("presigned URL is not a valid header"))?;
            headers.insert(header::LOCATION, location);
            Ok((StatusCode::FOUND, headers).into_response())
        }
        Download::Stream { file, content_disposition, body } => {
            let ctype = HeaderValue::from_str(&file.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            headers.insert(header::CONTENT_TYPE, ctype);
            if let Ok(v) = HeaderValue::from_str(&content_disposition) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
            let stream = body.map_err(std::io::Error::other);
            Ok((StatusCode::OK, headers, Body::from_stream(stream)).into_response())
        }
    }
}
