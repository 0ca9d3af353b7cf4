//! A loopback stand-in for Ably's REST host: records every request and answers revocations in
//! the shape a test asks for.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub content_type: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// 201 `[{target, issuedBefore, appliesAt}]` (the documented shape).
    List,
    /// 200 `{successCount, failureCount, results}` (X-Ably-Version ≥ 3).
    Batch,
    /// 500 with an error body.
    Failure,
}

pub struct AblyStandIn {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl AblyStandIn {
    pub async fn start(answer: Answer) -> AblyStandIn {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let shared = recorded.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let shared = shared.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let shared = shared.clone();
                async move {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let target = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["targets"][0].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    shared.lock().unwrap().push(Recorded {
                        method: request.method().to_string(),
                        path: request.path().to_owned(),
                        authorization: header("authorization"),
                        content_type: header("content-type"),
                        body,
                    });
                    let result = serde_json::json!({"target": target, "issuedBefore": 1, "appliesAt": 2});
                    match answer {
                        Answer::List => HttpResponse::Created().json(vec![result]),
                        Answer::Batch => HttpResponse::Ok().json(serde_json::json!({
                            "successCount": 1, "failureCount": 0, "results": [result]
                        })),
                        Answer::Failure => HttpResponse::InternalServerError().json(serde_json::json!({
                            "error": {"code": 50000, "statusCode": 500, "message": "stand-in failure"}
                        })),
                    }
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        AblyStandIn {
            url: format!("http://127.0.0.1:{port}"),
            recorded,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}
