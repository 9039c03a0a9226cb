//! `/api/lectures/*` and `/api/rooms/{roomId}/lectures`: a room's lectures, a host's lectures and search, the
//! lecture page's content, transcript search, summary edits and regeneration, share links.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{Client, Json, OptionalJson, Path, Query, SignedIn};
use super::rooms::HostedRoom;
use crate::app::App;
use crate::lectures::{self, Credentials, Opened, SummaryEdit, shares};

/// Header carrying a share-link token on API calls (a download link carries it as `?share=` instead).
pub const SHARE_HEADER: &str = "x-confctl-share";

/// A lecture the caller may read — by account, guest session (`X-Confctl-Session`) or share link — from the
/// `{lectureId}` path segment; everyone else gets 404.
#[derive(Debug)]
pub struct LectureReader(pub Opened);

#[derive(Debug, Deserialize)]
struct ShareQuery {
    share: Option<String>,
}

impl FromRequestParts<App> for LectureReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .map_err(|_| ApiError(lectures::access::not_found()))?;
        let lecture_id = params.get("lectureId").cloned().unwrap_or_default();
        let auth = SignedIn::from_request_parts(parts, app).await.ok().map(|SignedIn(auth)| auth);
        let Client(client) = Client::from_request_parts(parts, app).await?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let session = header(super::SESSION_HEADER);
        let share = match header(SHARE_HEADER) {
            Some(token) => Some(token),
            None => Query::<ShareQuery>::from_request_parts(parts, app).await.ok().and_then(|Query(q)| q.share),
        };
        let credentials =
            Credentials { auth, guest_session: session.as_deref(), share_token: share.as_deref(), ip: client.ip };
        Ok(Self(lectures::access::open(app, &lecture_id, credentials).await?))
    }
}

pub async fn of_room(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "lectures": lectures::of_room(&app, &hosted.room).await? })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    #[serde(default)]
    all: bool,
}

pub async fn list(
    State(app): State<App>,
    SignedIn(auth): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(lectures::of_host(&app, &auth, q.all, q.q.as_deref()).await?))
}

pub async fn get(State(app): State<App>, LectureReader(opened): LectureReader) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(lectures::view(&app, &opened).await?))
}

#[derive(Debug, Deserialize)]
pub struct TranscriptQuery {
    q: Option<String>,
}

pub async fn transcript(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    Query(q): Query<TranscriptQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(lectures::transcript(&app, &opened, q.q.as_deref()).await?))
}

pub async fn edit_summary(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    Json(body): Json<SummaryEdit>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(lectures::edit_summary(&app, &opened, body).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegenerateBody {
    #[serde(default)]
    replace_edits: bool,
}

pub async fn regenerate_summary(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    OptionalJson(body): OptionalJson<RegenerateBody>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, axum::Json(lectures::regenerate(&app, &opened, body.replace_edits).await?)))
}

pub async fn create_share(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    OptionalJson(body): OptionalJson<shares::NewShare>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(shares::create(&app, &opened, body).await?)))
}

pub async fn list_shares(State(app): State<App>, LectureReader(opened): LectureReader) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "shares": shares::list(&app, &opened).await? })))
}

#[derive(Debug, Deserialize)]
pub struct SharePath {
    #[serde(rename = "lectureId")]
    _lecture_id: String,
    #[serde(rename = "shareId")]
    share_id: String,
}

pub async fn revoke_share(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    Path(p): Path<SharePath>,
) -> ApiResult<StatusCode> {
    shares::revoke(&app, &opened, &p.share_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct FilePath {
    #[serde(rename = "lectureId")]
    _lecture_id: String,
    #[serde(rename = "fileId")]
    file_id: String,
}

/// `GET /api/lectures/{lectureId}/files/{fileId}`: a file of the lecture, for whoever may read the lecture.
pub async fn file(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    Path(p): Path<FilePath>,
) -> ApiResult<axum::response::Response> {
    let file = lectures::file(&app, &opened, &p.file_id).await?;
    super::files::respond(&app, file).await
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// `GET /api/lectures/{lectureId}/export?format=`: one download of the lecture, for whoever may read it.
pub async fn export(
    State(app): State<App>,
    LectureReader(opened): LectureReader,
    Query(q): Query<ExportQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::http::{HeaderMap, HeaderValue, header};
    let format: crate::export::Format = q.format.as_deref().unwrap_or_default().parse()?;
    let download = lectures::downloads::download(&app, &opened, format).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(download.content_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Ok(value) = HeaderValue::from_str(&crate::files::content_disposition(&download.file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    let body = match download.body {
        lectures::downloads::Body::Bytes(bytes) => axum::body::Body::from(bytes),
        lectures::downloads::Body::File(temp) => {
            // The open file keeps its data after the temporary name is removed (on drop of `temp`).
            let file = temp.reopen().map_err(|e| crate::Error::internal(format!("reading the ZIP: {e}")))?;
            axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)))
        }
    };
    Ok((StatusCode::OK, headers, body).into_response())
}
