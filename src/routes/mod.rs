//! HTTP only: extract, call one service, shape the response. The whole route table is here.

pub mod ably;
pub mod admin_users;
pub mod audience_guard;
pub mod console;
pub mod cookies;
pub mod errors;
pub mod extractors;
pub mod factors;
pub mod form_params;
pub mod health;
pub mod invite;
pub mod json_body;
pub mod logout;
pub mod pagination;
pub mod recover;
pub mod request_body;
pub mod security_headers;
pub mod shed_connections;
pub mod signup;
pub mod site;
pub mod token;
pub mod user;
pub mod user_json;
pub mod user_sessions;
pub mod verify;

use actix_web::{HttpResponse, web};

/// The GoTrue API, mounted at `/.netlify/identity` by `startup`. A known path with another
/// method answers 405 with an empty body, as GoTrue's router does.
pub fn identity(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/settings").route(web::get().to(health::settings)))
        .service(resource("/signup").route(web::post().to(signup::signup)))
        .service(resource("/token").route(web::post().to(token::token)))
        .service(resource("/verify").route(web::post().to(verify::verify)))
        .service(resource("/recover").route(web::post().to(recover::recover)))
        .service(
            resource("/user")
                .route(web::get().to(user::get_user))
                .route(web::put().to(user::update_user)),
        )
        .service(resource("/user/sessions").route(web::get().to(user_sessions::list)))
        .service(resource("/user/sessions/{id}").route(web::delete().to(user_sessions::end)))
        .service(resource("/logout").route(web::post().to(logout::logout)))
        .service(resource("/factors").route(web::post().to(factors::enroll)))
        .service(resource("/factors/{id}").route(web::delete().to(factors::unenroll)))
        .service(resource("/factors/{id}/challenge").route(web::post().to(factors::challenge)))
        .service(resource("/factors/{id}/verify").route(web::post().to(factors::verify)))
        .service(resource("/invite").route(web::post().to(invite::invite)))
        .service(
            resource("/admin/users")
                .route(web::get().to(admin_users::list_users))
                .route(web::post().to(admin_users::create_user)),
        )
        .service(
            resource("/admin/users/{id}")
                .route(web::get().to(admin_users::get_user))
                .route(web::put().to(admin_users::update_user))
                .route(web::delete().to(admin_users::delete_user)),
        )
        .service(resource("/admin/users/{id}/factors").route(web::get().to(factors::admin_list)))
        .service(
            resource("/admin/users/{id}/factors/{factor_id}")
                .route(web::delete().to(factors::admin_delete)),
        )
        .service(resource("/admin/audit").route(web::get().to(admin_users::list_audit)));
}

/// The Ably token endpoint at the path the seed's page already uses.
pub fn functions(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/ably-jwt")
            .route(web::get().to(ably::ably_token))
            .route(web::post().to(ably::ably_token)),
    );
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(HttpResponse::MethodNotAllowed))
}

/// chi's default for unknown routes (spec §0).
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("404 page not found\n")
}
