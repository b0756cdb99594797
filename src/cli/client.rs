//! `gridsms send|status|modems|queue`: talk to the running daemon through its HTTP API, with
//! the address and a token taken from the same config file the daemon reads.

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use gridsms::config::{self, DEFAULT_CONFIG_PATH, Scope};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The daemon's config file: gives the API address and a token.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "GRIDSMS_CONFIG", global = true)]
    pub config: PathBuf,
    /// API base URL, overriding the config (e.g. http://127.0.0.1:8727).
    #[arg(long, env = "GRIDSMS_API", global = true)]
    pub api: Option<String>,
    /// File holding the bearer token, overriding the config's tokens.
    #[arg(long, env = "GRIDSMS_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Recipient mobile number; repeat for several.
    #[arg(long, required = true)]
    pub to: Vec<String>,
    /// Message text.
    #[arg(long)]
    pub text: String,
    /// Category (manual, outage, broadcast, …); manual by default.
    #[arg(long)]
    pub category: Option<String>,
    /// Makes a retried command safe: the same key never queues twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ModemsArgs {
    #[command(subcommand)]
    pub command: Option<ModemsCommand>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModemsCommand {
    /// Probe serial ports directly (no daemon needed) and print ready-to-paste config.
    Detect(super::detect::DetectArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One message's id; without it, the queue and the latest messages.
    pub id: Option<i64>,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub(super) struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    pub(super) fn new(args: &ApiArgs, scope: Scope) -> Result<Client> {
        let loaded = config::load(&args.config).ok();
        let base = match (&args.api, &loaded) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(l)) => format!("http://{}", l.config.api.listen),
            (None, None) => bail!(
                "cannot read {}; give --config or --api",
                args.config.display()
            ),
        };
        let token = match (&args.token_file, &loaded) {
            (Some(file), _) => std::fs::read_to_string(file)
                .with_context(|| format!("reading token file {}", file.display()))?
                .trim()
                .to_owned(),
            (None, Some(l)) => l
                .config
                .api
                .token_with(scope)
                .map(|t| t.secret.expose().to_owned())
                .ok_or_else(|| {
                    anyhow!(
                        "no token with the {} scope in {}",
                        scope.as_str(),
                        args.config.display()
                    )
                })?,
            (None, None) => bail!("no token: give --token-file or a readable --config"),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build()
            .into();
        Ok(Client { base, token, agent })
    }

    pub(super) fn get(&self, path: &str) -> Result<(u16, Value)> {
        let response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
        read(response)
    }

    pub(super) fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
        read(response)
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .context("the daemon's answer is not JSON")?;
    Ok((status, body))
}

/// 2xx → the body; otherwise the API's error line.
pub(super) fn ok(status: u16, body: Value) -> Result<Value> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        let msg = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unexpected answer");
        bail!("HTTP {status}: {msg}")
    }
}

pub(super) fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsms: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn send(args: SendArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args.api, Scope::Send)?;
        let mut body = json!({"to": args.to, "text": args.text});
        if let Some(c) = &args.category {
            body["category"] = json!(c);
        }
        if let Some(k) = &args.idempotency_key {
            body["idempotency_key"] = json!(k);
        }
        let (status, answer) = client.post("/api/v1/messages", &body)?;
        let answer = ok(status, answer)?;
        if args.api.json {
            println!("{answer}");
        } else {
            let ids: Vec<String> = answer["ids"]
                .as_array()
                .map(|a| a.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default();
            println!(
                "queued: message id {} ({} segment(s)); `gridsms status {}` follows it",
                ids.join(", "),
                answer["segments"],
                ids.first().map_or("", String::as_str)
            );
        }
        Ok(())
    })())
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn status(args: StatusArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args.api, Scope::Read)?;
        if let Some(id) = args.id {
            let (status, m) = client.get(&format!("/api/v1/messages/{id}"))?;
            let m = ok(status, m)?;
            if args.api.json {
                println!("{m}");
                return Ok(());
            }
            for key in [
                "id",
                "to",
                "category",
                "state",
                "attempts",
                "modem",
                "segments",
                "created_at",
                "sent_at",
                "delivered_at",
                "last_error",
                "text",
            ] {
                println!("{key:>13}: {}", text(&m[key]));
            }
            return Ok(());
        }
        let (status, q) = client.get("/api/v1/queue")?;
        let q = ok(status, q)?;
        let (status, list) = client.get("/api/v1/messages?limit=10")?;
        let list = ok(status, list)?;
        if args.api.json {
            println!("{}", json!({"queue": q, "latest": list["messages"]}));
            return Ok(());
        }
        println!(
            "modems ready {}/{}; pending {}; dispatcher: {}",
            q["modems_ready"],
            q["modems_total"],
            q["pending"],
            text(&q["dispatcher"])
        );
        println!(
            "{:>8}  {:<15} {:<10} {:<10} {:<10} created",
            "id", "to", "category", "state", "modem"
        );
        for m in list["messages"].as_array().into_iter().flatten() {
            println!(
                "{:>8}  {:<15} {:<10} {:<10} {:<10} {}",
                text(&m["id"]),
                text(&m["to"]),
                text(&m["category"]),
                text(&m["state"]),
                text(&m["modem"]),
                text(&m["created_at"])
            );
        }
        Ok(())
    })())
}

pub fn modems(args: ApiArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args, Scope::Read)?;
        let (status, list) = client.get("/api/v1/modems")?;
        let list = ok(status, list)?;
        if args.json {
            println!("{list}");
            return Ok(());
        }
        println!(
            "{:<12} {:<12} {:<5} {:>6} {:<14} {:>13} {:>13} last error",
            "name", "state", "reg", "dBm", "carrier", "hour", "day"
        );
        for m in list.as_array().into_iter().flatten() {
            println!(
                "{:<12} {:<12} {:<5} {:>6} {:<14} {:>13} {:>13} {}",
                text(&m["name"]),
                text(&m["state"]),
                text(&m["registered"]),
                text(&m["signal_dbm"]),
                text(&m["carrier"]),
                format!("{}/{}", m["sent_hour"], m["hourly_limit"]),
                format!("{}/{}", m["sent_day"], m["daily_limit"]),
                text(&m["last_error"])
            );
        }
        Ok(())
    })())
}

pub fn queue(args: ApiArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args, Scope::Read)?;
        let (status, q) = client.get("/api/v1/queue")?;
        let q = ok(status, q)?;
        if args.json {
            println!("{q}");
            return Ok(());
        }
        println!(
            "pending {} of {} messages; dispatcher: {}",
            q["pending"],
            q["total"],
            text(&q["dispatcher"])
        );
        for section in ["by_state", "by_category"] {
            let cells: Vec<String> = q[section]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!("{section:>12}: {}", cells.join(", "));
        }
        Ok(())
    })())
}
