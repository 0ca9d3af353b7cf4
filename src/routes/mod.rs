//! HTTP only: extract, call one service, shape the response. The whole route table is here.

pub mod admin_users;
pub mod cookies;
pub mod errors;
pub mod health;
pub mod invite;
pub mod json_body;
pub mod logout;
pub mod pagination;
pub mod recover;
pub mod signup;
pub mod token;
pub mod user;
pub mod user_json;
pub mod verify;

use actix_web::{HttpResponse, web};

/// The GoTrue API, mounted at `/.netlify/identity` by `startup`.
pub fn identity(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/settings", web::get().to(health::settings))
        .route("/signup", web::post().to(signup::signup))
        .route("/token", web::post().to(token::token))
        .route("/verify", web::post().to(verify::verify))
        .route("/recover", web::post().to(recover::recover))
        .route("/user", web::get().to(user::get_user))
        .route("/user", web::put().to(user::update_user))
        .route("/logout", web::post().to(logout::logout))
        .route("/invite", web::post().to(invite::invite))
        .route("/admin/users", web::get().to(admin_users::list_users))
        .route("/admin/users", web::post().to(admin_users::create_user))
        .route("/admin/users/{id}", web::get().to(admin_users::get_user))
        .route("/admin/users/{id}", web::put().to(admin_users::update_user))
        .route(
            "/admin/users/{id}",
            web::delete().to(admin_users::delete_user),
        )
        .route("/admin/audit", web::get().to(admin_users::list_audit));
}

/// chi's default for unknown routes (spec §0).
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("404 page not found\n")
}
