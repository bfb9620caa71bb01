//! `local-gateway`: serves the template's HTTP API on 127.0.0.1 and the Lambda Invoke API on a second
//! port, optionally seeding the local table and writing `.local/env.json`.
//!
//! Environment: what `infra/local/stack.sh start` writes (AWS_ENDPOINT_URL_*, TABLE_NAME, …) plus
//! SESSION_TOKEN_SECRET, which it stores in the local Secrets Manager for the functions to read, as
//! deployed (`api::secret`), and signs the seeded users' tokens with. Installs the template's EventBridge rules on the local bus and delivers their
//! events to the consumer functions (see `bus`); the seed goes through them. Flags: --api-port N (3000),
//! --invoke-port N (3001), --seed, --env-file PATH, --unlimited-org ORG (that org's requests are counted
//! but never refused for their rate: the test command's fuzz step; a gateway-only setting, see
//! `api::Authenticator::unlimited_for`), --tick (fire the template's schedules by the wall clock, as
//! the run command does; tests fire them by moving an org's clock instead, see `gateway::clock`).

use std::path::PathBuf;

use gateway::{Gateway, Template, iam, seed};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    api::init_tracing();
    let mut api_port = 3000u16;
    let mut invoke_port = 3001u16;
    let mut seed_data = false;
    let mut env_file = PathBuf::from(".local/env.json");
    let mut unlimited_org = None;
    let mut tick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--api-port" => api_port = args.next().ok_or("--api-port needs a value")?.parse()?,
            "--invoke-port" => invoke_port = args.next().ok_or("--invoke-port needs a value")?.parse()?,
            "--seed" => seed_data = true,
            "--tick" => tick = true,
            "--env-file" => env_file = args.next().ok_or("--env-file needs a path")?.into(),
            "--unlimited-org" => {
                unlimited_org = Some(domain::OrgId::parse(&args.next().ok_or("--unlimited-org needs an org id")?)?)
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let template = Template::of_project()?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    // Clients that record each function's AWS permissions when IAM_RECORD_DIR is set (see `iam`).
    let secret = std::env::var("SESSION_TOKEN_SECRET")?;
    let secrets = iam::secretsmanager(&aws_sdk_secretsmanager::Client::new(&config));
    let arn = seed::store_session_secret(&secrets, &secret).await?;
    let table = std::env::var("TABLE_NAME")?;
    let store = store::Store::new(iam::dynamodb(&aws_sdk_dynamodb::Client::new(&config)), table);
    let mut app = api::App::with_secret(store, api::secret::SessionSecret::managed(secrets, arn))
        .with_issuer_and_audience(Some(seed::LOCAL_ISSUER), Some(seed::LOCAL_AUDIENCE));
    if let Some(org) = unlimited_org {
        app.auth = app.auth.unlimited_for(org);
    }
    let bus_name = std::env::var("EVENT_BUS_NAME")?;
    let publisher = events::Publisher::new(iam::eventbridge(&aws_sdk_eventbridge::Client::new(&config)), bus_name);
    let mut bucket = exports::Bucket::from_env(&config)?;
    bucket.client = iam::s3(&bucket.client);
    // Platform events on the local bus reach the consumers through the template's rules.
    gateway::bus::start_in_background(template.clone(), secret.clone().into_bytes())?;
    let store = app.store.clone();
    let jobs = gateway::bus::queues(&aws_sdk_sqs::Client::new(&config))?;
    let gateway = Gateway::new(app, publisher, bucket, jobs, template.routes)?
        .with_job_budget(template.job_budget)
        .with_schedules(template.schedules);
    let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", api_port)).await?;
    let invoke_listener = tokio::net::TcpListener::bind(("127.0.0.1", invoke_port)).await?;

    if seed_data {
        seed::load_catalog(&store).await?;
        let bus = aws_sdk_eventbridge::Client::new(&config);
        let now = service::Clock::wall(&service::SystemClock);
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
                "secretsmanager": std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").unwrap_or_default(),
                "events": std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").unwrap_or_default(),
                "sqs": std::env::var("AWS_ENDPOINT_URL_SQS").unwrap_or_default(),
            },
            "region": std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            // DynamoDB Local keeps one set of tables per access key (and region): a client with other
            // credentials sees no table. moto takes any.
            "credentials": {
                "accessKeyId": std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                "secretAccessKey": std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            },
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
    if tick {
        tokio::spawn(tick_schedules(gateway.clone()));
    }
    eprintln!("API on http://127.0.0.1:{api_port}/api/public/v1, Lambda Invoke API on http://127.0.0.1:{invoke_port}");
    gateway.serve(api_listener, invoke_listener).await?;
    Ok(())
}

/// Fires the template's schedules by the wall clock, checking every few seconds (`--tick`).
async fn tick_schedules(gateway: Gateway) {
    let clock = service::SystemClock;
    let mut checked = service::Clock::wall(&clock);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        let now = service::Clock::wall(&clock);
        gateway.fire_schedules(checked, now).await;
        checked = now;
    }
}
