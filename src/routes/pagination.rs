//! `page`/`per_page` parameters and the `Link` header GoTrue sends with lists (spec §1.11).

use actix_web::HttpRequest;

use super::errors::HttpError;

/// Upper bound on `per_page`: GoTrue had none, so one request could load every user.
pub const MAX_PER_PAGE: u32 = 1000;

#[derive(Debug, Clone, Copy)]
pub struct Pagination {
    pub page: u32,
    pub per_page: u32,
}

impl Pagination {
    /// Defaults page 1, 50 per page; 0 or garbage is a 400 (GoTrue crashed on `per_page=0`).
    pub fn from_params(params: &[(String, String)]) -> Result<Self, HttpError> {
        let get = |name: &str, default: u32| -> Result<u32, HttpError> {
            match params.iter().find(|(k, _)| k == name) {
                None => Ok(default),
                Some((_, v)) => v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        HttpError::bad_request(format!(
                            "Bad Pagination Parameters: {name} must be a positive integer"
                        ))
                    }),
            }
        };
        Ok(Pagination {
            page: get("page", 1)?,
            per_page: get("per_page", 50)?.min(MAX_PER_PAGE),
        })
    }

    pub fn last_page(&self, total: i64) -> u32 {
        let per = i64::from(self.per_page);
        u32::try_from(((total + per - 1) / per).max(1)).unwrap_or(u32::MAX)
    }
}

/// `<path?page=2&per_page=1>; rel="next", …; rel="last"`; always at least `rel="last"`, so the
/// header is never empty.
pub fn link_header(request: &HttpRequest, p: &Pagination, total: i64) -> String {
    let path = request.path();
    let other: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(request.query_string())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .collect();
    let url = |page: u32| {
        let mut query = other.clone();
        query.push(("page".into(), page.to_string()));
        query.push(("per_page".into(), p.per_page.to_string()));
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    };
    let last = p.last_page(total);
    let mut links = Vec::new();
    if p.page < last {
        links.push(format!("<{}>; rel=\"next\"", url(p.page + 1)));
    }
    if p.page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url((p.page - 1).min(last))));
    }
    links.push(format!("<{}>; rel=\"last\"", url(last)));
    links.join(", ")
}
