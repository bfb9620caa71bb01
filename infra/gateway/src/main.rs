//! `local-gateway`: serves the template's HTTP API on 127.0.0.1 and the Lambda Invoke API on a second
//! port, optionally seeding the local table and writing `.local/env.json`.
//!
//! Environment: what `infra/local/stack.sh start` writes (AWS_ENDPOINT_URL_*, TABLE_NAME, …) plus
//! SESSION_TOKEN_SECRET. Installs the template's EventBridge rules on the local bus and delivers their
//! events to the consumer functions (see `bus`); the seed goes through them. Flags: --api-port N (3000), --invoke-port N (3001), --seed, --env-file PATH.

use std::path::PathBuf;

use gateway::{Gateway, Template, iam, seed};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    api::init_tracing();
    let mut api_port = 3000u16;
    let mut invoke_port = 3001u16;
    let mut seed_data = false;
    let mut env_file = PathBuf::from(".local/env.json");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--api-port" => api_port = args.next().ok_or("--api-port needs a value")?.parse()?,
            "--invoke-port" => invoke_port = args.next().ok_or("--invoke-port needs a value")?.parse()?,
            "--seed" => seed_data = true,
            "--env-file" => env_file = args.next().ok_or("--env-file needs a path")?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let template = Template::of_project()?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    // Clients that record each function's AWS permissions when IAM_RECORD_DIR is set (see `iam`).
    let app = api::App::from_env_with(iam::dynamodb(&aws_sdk_dynamodb::Client::new(&config)))?;
    let bus_name = std::env::var("EVENT_BUS_NAME")?;
    let publisher = events::Publisher::new(iam::eventbridge(&aws_sdk_eventbridge::Client::new(&config)), bus_name);
    let mut bucket = exports::Bucket::from_env(&config)?;
    bucket.client = iam::s3(&bucket.client);
    let secret = std::env::var("SESSION_TOKEN_SECRET")?;
    // Platform events on the local bus reach the consumers through the template's rules.
    gateway::bus::start_in_background(template.clone(), secret.clone().into_bytes())?;
    let store = app.store.clone();
    let gateway = Gateway::new(app, publisher, bucket, template.routes)?;
    let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", api_port)).await?;
    let invoke_listener = tokio::net::TcpListener::bind(("127.0.0.1", invoke_port)).await?;

    if seed_data {
        seed::load_catalog(&store).await?;
        let bus = aws_sdk_eventbridge::Client::new(&config);
        let now = chrono::Utc::now();
        let mut orgs = Vec::new();
        for (id, name) in [("org-acme", "Acme Payments"), ("org-globex", "Globex Health")] {
            let org = domain::OrgId::parse(id)?;
            orgs.push(seed::seed_org(&store, secret.as_bytes(), org, name, now, seed::Delivery::Bus(&bus)).await?);
        }
        let env = serde_json::json!({
            "apiBaseUrl": format!("http://127.0.0.1:{api_port}/api/public/v1"),
            "lambdaEndpoint": format!("http://127.0.0.1:{invoke_port}"),
            "awsEndpoints": {
                "dynamodb": std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default(),
                "s3": std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_default(),
                "events": std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").unwrap_or_default(),
                "sqs": std::env::var("AWS_ENDPOINT_URL_SQS").unwrap_or_default(),
            },
            "region": std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            "tableName": std::env::var("TABLE_NAME").unwrap_or_default(),
            "exportBucket": std::env::var("EXPORT_BUCKET").unwrap_or_default(),
            "eventBusName": std::env::var("EVENT_BUS_NAME").unwrap_or_default(),
            // The platform's events (users, teams, completions, courses) arrive on the default bus.
            "platformEventBusName": "default",
            "orgs": orgs,
        });
        if let Some(dir) = env_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&env_file, serde_json::to_string_pretty(&env)?)?;
        eprintln!("seeded 2 orgs; wrote {}", env_file.display());
    }
    eprintln!("API on http://127.0.0.1:{api_port}/api/public/v1, Lambda Invoke API on http://127.0.0.1:{invoke_port}");
    gateway.serve(api_listener, invoke_listener).await?;
    Ok(())
}
