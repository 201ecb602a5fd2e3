//! `pactum serve` and `pactum token create|list|revoke` (offline, against the data directory).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use server::{AppConfig, AppState};

use crate::config::{ConfigArgs, DATA_DIR_DEFAULT};

/// `pactum config show`.
#[derive(Args, Debug)]
pub struct ConfigShowArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Server URL for client commands.
    #[arg(long, env = "PACTUM_SERVER")]
    server: Option<String>,
    /// API token for client commands.
    #[arg(long, env = "PACTUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// `pactum config ...`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration, where each value came from, secrets masked.
    Show(ConfigShowArgs),
}

pub fn run_config(command: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Show(args) = command;
    let effective =
        crate::config::resolve(&args.config, args.server.as_deref(), args.token.as_deref())?;
    for line in effective.show() {
        crate::output::print_line(line);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Register the example agent `acme/support-bot` with the example support-agent pact.
    #[arg(long)]
    demo: bool,
    /// Let an admin move the server's clock forward (`POST /v1/clock {"advance_ms": N}`), to
    /// rehearse weeks of signals in minutes. For drills and tests, never for production.
    #[arg(long, env = "PACTUM_SIMULATED_CLOCK")]
    simulated_clock: bool,
}

/// Where tokens are managed: the data directory, or a running server.
#[derive(Args, Debug)]
pub struct TokenStore {
    /// Data directory.
    #[arg(long, value_name = "DIR", default_value = DATA_DIR_DEFAULT, env = "PACTUM_DATA")]
    data: PathBuf,
    /// Manage tokens through this server's API instead of the data directory.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Admin token for `--server`.
    #[arg(long, env = "PACTUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// API tokens, managed offline in the data directory (the server picks changes up within
/// 10 seconds), or through a running server's API with `--server URL` and an admin `--token`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown once; only its SHA-256 is stored).
    Create {
        #[command(flatten)]
        store: TokenStore,
        /// `admin`, `operator`, `agent` or `auditor`.
        #[arg(long)]
        role: String,
        /// For `agent` tokens: the agent it may act as.
        #[arg(long)]
        agent: Option<String>,
        /// A label, shown in listings and in records of what the token did.
        #[arg(long)]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (ids, names, roles; never secrets).
    List {
        #[command(flatten)]
        store: TokenStore,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id (`tok_...`).
    Revoke {
        #[command(flatten)]
        store: TokenStore,
        /// The token id.
        id: String,
    },
}

pub fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let effective = crate::config::resolve(&args.config, None, None)?;
    let data = effective.data.clone();
    let opened = AppState::open(AppConfig {
        data_dir: data.clone(),
        limits: effective.limits.clone(),
        simulated_clock: args.simulated_clock,
        notify: effective.notify.clone(),
    })
    .with_context(|| format!("opening data directory `{}`", data.display()))?;
    let app = opened.app;
    if args.demo {
        server::demo::install(&app).await?;
    }
    let listener = tokio::net::TcpListener::bind(effective.listen)
        .await
        .with_context(|| format!("listening on {}", effective.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    let base = format!("http://{address}");
    eprintln!(
        "pactum serve: listening on {base} (data in {})",
        data.display()
    );
    if let Some(token) = &opened.new_admin_token {
        let token_file = data.join(server::ADMIN_TOKEN_FILE);
        eprintln!(
            "admin token (shown once; saved to {} with mode 0600):",
            token_file.display()
        );
        println!("{token}");
    }
    if args.demo {
        let agent = server::demo::DEMO_AGENT;
        eprintln!("demo agent {agent}: public oracle at {base}/v1/oracle/{agent}");
        eprintln!("try a decision:");
        eprintln!(
            "  curl -s {base}/v1/decide -H \"Authorization: Bearer $(cat {})\" -d '{{\"agent\": \"{agent}\", \"action\": \"issue_refund\", \"args\": {{\"order_id\": \"A-1\", \"amount_cents\": 1200}}}}'",
            data.join(server::ADMIN_TOKEN_FILE).display()
        );
    }
    server::serve(listener, app, server::shutdown_signal())
        .await
        .context("serving")?;
    eprintln!("pactum serve: stopped; every acknowledged record is durable");
    Ok(())
}

fn api_client(server: String, token: Option<String>) -> crate::client_cmd::Client {
    crate::client_cmd::Client::new(&crate::client_cmd::ClientArgs {
        server,
        token,
        json: true,
    })
}

pub fn run_token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            store:
                TokenStore {
                    server: Some(server),
                    token,
                    ..
                },
            role,
            agent,
            name,
            json,
            ..
        } => {
            let client = api_client(server, token);
            let body = serde_json::json!({ "role": role, "agent": agent, "name": name });
            let created = client.call_json("POST", "/v1/tokens", Some(&body.to_string()))?;
            if json {
                crate::output::print_line(serde_json::to_string_pretty(&created)?);
            } else {
                crate::output::print_line(created["token"].as_str().unwrap_or_default());
                eprintln!(
                    "created {} ({role}); the secret above is shown once",
                    created["id"].as_str().unwrap_or("?")
                );
            }
        }
        TokenCommand::List {
            store:
                TokenStore {
                    server: Some(server),
                    token,
                    ..
                },
            ..
        } => {
            // Through the API the listing is the server's JSON, whatever `--json` says.
            let listed = api_client(server, token).call_json("GET", "/v1/tokens", None)?;
            crate::output::print_line(serde_json::to_string_pretty(&listed)?);
        }
        TokenCommand::Revoke {
            store:
                TokenStore {
                    server: Some(server),
                    token,
                    ..
                },
            id,
            ..
        } => {
            api_client(server, token).call("DELETE", &format!("/v1/tokens/{id}"), None)?;
            eprintln!("revoked {id}");
        }
        TokenCommand::Create {
            store: TokenStore { data, .. },
            role,
            agent,
            name,
            json,
            ..
        } => {
            server::tokens::check_token_spec(&role, agent.as_deref())
                .map_err(anyhow::Error::msg)?;
            if let Some(agent) = &agent {
                server::agents::validate_agent_id(agent)
                    .map_err(|err| anyhow::anyhow!(err.detail))?;
            }
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let registry = open_registry(&data)?;
            let (secret, row) =
                registry.create_token(&name, &role, agent.as_deref(), server::wire::now_ms())?;
            if json {
                let mut value = server::tokens::token_json(&row);
                value["token"] = serde_json::json!(secret);
                crate::output::print_line(serde_json::to_string_pretty(&value)?);
            } else {
                eprintln!("created {} ({role}); the secret is shown once:", row.id);
                crate::output::print_line(secret);
            }
        }
        TokenCommand::List {
            store: TokenStore { data, .. },
            json,
        } => {
            let rows = open_registry(&data)?.tokens()?;
            if json {
                let values: Vec<_> = rows.iter().map(server::tokens::token_json).collect();
                crate::output::print_line(serde_json::to_string_pretty(&values)?);
            } else {
                for row in rows {
                    let state = if row.revoked_ms.is_some() {
                        "revoked"
                    } else {
                        "live"
                    };
                    crate::output::print_line(format!(
                        "{}  {:<8}  {:<7}  {}{}",
                        row.id,
                        row.role,
                        state,
                        row.name,
                        row.agent
                            .map(|agent| format!(" (agent {agent})"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        TokenCommand::Revoke {
            store: TokenStore { data, .. },
            id,
        } => {
            if !open_registry(&data)?.revoke_token(&id, server::wire::now_ms())? {
                bail!("no live token `{id}`");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

fn open_registry(data: &std::path::Path) -> anyhow::Result<server::registry::Registry> {
    if !data.join(server::registry::REGISTRY_FILE).exists() {
        bail!(
            "`{}` holds no registry; run `pactum serve --data {}` once first",
            data.display(),
            data.display()
        );
    }
    Ok(server::registry::Registry::open(data)?)
}
