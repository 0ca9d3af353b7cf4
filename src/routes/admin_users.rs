//! `/admin/users[/{id}]` and `/admin/audit`: the GoTrue admin API.

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::errors::HttpError;
use super::json_body::{object, parse_json};
use super::pagination::{Pagination, link_header};
use super::user_json::UserJson;
use crate::domain::user::UserId;
use crate::routes::extractors::AdminUser;
use crate::services::admin_users::{self, BanChange, NewUser, UserChanges, UserQuery};
use crate::state::AppState;
use crate::store::AuditFilter;

#[derive(Serialize)]
struct UserList<'a> {
    aud: &'a str,
    users: Vec<UserJson<'a>>,
}

/// `GET /admin/users?page&per_page&filter&sort`: `{aud, users}` plus `X-Total-Count` and a
/// `Link` header that is never empty (gotrue-js 0.9 throws on an empty one).
pub async fn list_users(
    state: web::Data<AppState>,
    admin: AdminUser,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let pagination = Pagination::from_params(&params)?;
    let mut ascending = false;
    for (_, sort) in params.iter().filter(|(k, _)| k == "sort") {
        ascending = parse_sort(sort)?;
    }
    let filter = params
        .iter()
        .find(|(k, _)| k == "filter")
        .map(|(_, v)| v.clone());
    let query = UserQuery {
        aud: admin.aud.clone(),
        filter,
        status: admin_users::UserStatus::All,
        ascending,
        page: pagination.page,
        per_page: pagination.per_page,
        from: None,
        count_cap: None,
    };
    let page = admin_users::list_users(&state, &query).await?;
    let body = UserList {
        aud: &admin.aud,
        users: page.users.iter().map(UserJson::from).collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("x-total-count", page.total.count().to_string()))
        .insert_header((
            "link",
            link_header(&request, &pagination, page.total.count()),
        ))
        .json(body))
}

/// `created_at [asc|desc]`, GoTrue's only sort field.
fn parse_sort(sort: &str) -> Result<bool, HttpError> {
    let mut parts = sort.split_whitespace();
    let field = parts.next().unwrap_or("");
    let direction = parts.next().unwrap_or("desc");
    if field != "created_at" || parts.next().is_some() {
        return Err(HttpError::bad_request(format!(
            "Bad Sort Parameters: field {field:?} is not sortable"
        )));
    }
    match direction.to_ascii_lowercase().as_str() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(HttpError::bad_request(format!(
            "Bad Sort Parameters: unknown direction {other:?}"
        ))),
    }
}

#[derive(Deserialize)]
struct CreateParams {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    aud: Option<String>,
    #[serde(default)]
    user_metadata: Option<serde_json::Value>,
    #[serde(default)]
    app_metadata: Option<serde_json::Value>,
}

pub async fn create_user(
    state: web::Data<AppState>,
    admin: AdminUser,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    let params: CreateParams = parse_json(&body, "Could not decode admin user params")?;
    let new = NewUser {
        // `aud` in the body overrides the request's (spec §1.11).
        aud: params.aud.filter(|a| !a.is_empty()).unwrap_or(admin.aud),
        email: params.email,
        password: params.password,
        confirm: params.confirm,
        role: params.role,
        user_metadata: object(params.user_metadata, "user_metadata")?,
        app_metadata: object(params.app_metadata, "app_metadata")?,
    };
    let user = admin_users::create_user(&state, &admin.actor, new).await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}

fn user_id(path: &str) -> Result<UserId, HttpError> {
    UserId::parse(path).map_err(|_| HttpError::bad_request("user_id must be an UUID"))
}

pub async fn get_user(
    state: web::Data<AppState>,
    _admin: AdminUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let user = admin_users::get_user(&state, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}

#[derive(Deserialize)]
struct UpdateParams {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    app_metadata: Option<serde_json::Value>,
    #[serde(default)]
    user_metadata: Option<serde_json::Value>,
    #[serde(default)]
    ban_duration: Option<String>,
    #[serde(default)]
    ban_reason: Option<String>,
}

pub async fn update_user(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<String>,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    let id = user_id(&path)?;
    let params: UpdateParams = parse_json(&body, "Could not decode admin user params")?;
    let ban = match params.ban_duration.as_deref() {
        Some(text) => Some(BanChange::parse(text).map_err(|e| HttpError::bad_request(e.reason))?),
        None => None,
    };
    let changes = UserChanges {
        role: params.role,
        confirm: params.confirm,
        password: params.password,
        email: params.email,
        app_metadata: object(params.app_metadata, "app_metadata")?,
        user_metadata: object(params.user_metadata, "user_metadata")?,
        ban,
        reason: params.ban_reason,
    };
    let user = admin_users::update_user(&state, &admin.actor, id, changes).await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}

/// 200 `{}` (spec §1.11).
pub async fn delete_user(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    admin_users::delete_user(&state, &admin.actor, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// `GET /admin/audit?page&per_page&query=<scope>:<text>` (spec §1.11).
pub async fn list_audit(
    state: web::Data<AppState>,
    _admin: AdminUser,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let pagination = Pagination::from_params(&params)?;
    let filter = match params
        .iter()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.trim())
    {
        None | Some("") => AuditFilter::All,
        Some(q) => match q.split_once(':') {
            Some(("author", text)) => AuditFilter::Author(text.trim().to_owned()),
            Some(("action", text)) => AuditFilter::Action(text.trim().to_owned()),
            Some(("type", text)) => AuditFilter::LogType(text.trim().to_owned()),
            _ => return Err(HttpError::bad_request(format!("Invalid query scope: {q}"))),
        },
    };
    let page = crate::services::audit::list(&state, &filter, pagination.page, pagination.per_page)
        .await
        .map_err(HttpError::internal)?;
    let entries: Vec<_> = page
        .entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id.to_string(),
                "payload": {
                    "timestamp": e.created_at.to_rfc3339(),
                    "actor_id": e.actor_id,
                    "actor_email": e.actor_email,
                    "action": e.action,
                    "log_type": e.log_type,
                    "traits": e.traits,
                },
                "created_at": e.created_at.to_rfc3339(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("x-total-count", page.total.to_string()))
        .insert_header(("link", link_header(&request, &pagination, page.total)))
        .json(entries))
}
