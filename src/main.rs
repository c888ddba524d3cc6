//! The `minyi` command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use minyi::app::staff_auth::{self, CreateUserError};
use minyi::app::{recount, verify};
use minyi::config::Settings;
use minyi::domain::rating::RaterGroup;
use minyi::domain::staff::Role;
use minyi::startup::{self, Application};
use minyi::{demo, telemetry};

#[derive(Parser)]
#[command(
    name = "minyi",
    version,
    about = "卫生健康服务群众评议与投票后端 (health-service voting and evaluation backend)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on (overrides MINYI_BIND).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Serve the embedded default with a sample campaign, a staff account and dev login on.
    Demo {
        #[arg(long)]
        bind: Option<String>,
    },
    /// Re-verify a campaign's audit chain and the state it records; exit 0 only when all holds.
    Verify {
        /// The campaign whose chain to read from the database.
        #[arg(long, required_unless_present = "file")]
        campaign: Option<i64>,
        /// An exported chain (JSON Lines) to check without a database.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Compare a campaign's live counts with the ledger, print any difference and repair it.
    Reconcile {
        #[arg(long)]
        campaign: i64,
    },
    /// Staff account administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a staff account; the password is read from standard input (or a prompt).
    CreateUser {
        #[arg(long)]
        username: String,
        /// admin, organizer, unit_handler, expert or auditor.
        #[arg(long)]
        role: String,
        /// The unit (单位) a unit_handler nominates for and answers opinions for (the code
        /// of the unit's target in evaluations); required for that role.
        #[arg(long)]
        unit: Option<String>,
        /// Makes the account a rater in evaluations: party_member (党员互评), leader (领导点评)
        /// or supervisor (行风监督员). Give such accounts the read-only role auditor.
        #[arg(long)]
        rater_group: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("minyi: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("minyi: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match run(cli.command, settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "minyi stopped with an error");
                eprintln!("minyi: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { bind } => {
            override_bind(&mut settings, bind)?;
            telemetry::init(&settings);
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
            tracing::info!("stopped");
        }
        Command::Migrate => {
            telemetry::init(&settings);
            startup::services(settings).await?;
            println!("migrations applied");
        }
        Command::Demo { bind } => {
            override_bind(&mut settings, bind)?;
            settings.dev_login = true;
            // Survey links point at the demo itself; the sender starts after the seed, which
            // sends the seeded surveys itself to print their links.
            settings.sms.public_base_url = format!("http://{}", settings.bind);
            let sender = std::mem::replace(&mut settings.sms.sender, false);
            telemetry::init(&settings);
            let app = Application::build(settings).await?;
            let services = app.services().clone();
            let campaign_id = demo::seed(services.store.as_ref()).await?;
            let (evaluation_id, links) = demo::seed_evaluation(&services).await?;
            let published_id = demo::seed_published(&services).await?;
            if sender {
                tokio::spawn(minyi::app::sms::send_forever(services.clone()));
            }
            let password = demo_password();
            let account = match staff_auth::create_user(
                services.store.as_ref(),
                "demo-admin",
                &password,
                Role::Admin,
                None,
            )
            .await
            {
                Ok(_) => format!("demo-admin / {password}   (shown once; keep it)"),
                Err(CreateUserError::Taken) => {
                    "demo-admin (created on an earlier run; its password was shown then)".into()
                }
                Err(e) => return Err(e.into()),
            };
            let base = format!("http://{}:{}", services.settings.bind.ip(), app.port());
            println!(
                "\n民意 demo is running on {base}\n\
                 \n  database     {}\n  campaign     {} (id {campaign_id})\n  staff login  {account}\n\
                 \nTry:\n  curl {base}/api/v1/campaigns\n  curl '{base}/api/v1/campaigns/{campaign_id}/candidates?q=王'\n  \
                 curl -X POST {base}/api/v1/auth/dev -H 'content-type: application/json' -d '{{\"openid\":\"demo-user\"}}'\n  \
                 curl -X POST {base}/api/v1/admin/login -H 'content-type: application/json' -d '{{\"username\":\"demo-admin\",\"password\":\"...\"}}'\n  \
                 open {base}/api/v1/openapi.json\n",
                redact_url(services.settings.database_url.expose()),
                demo::DEMO_TITLE,
            );
            println!(
                "  evaluation   {} (id {evaluation_id})",
                demo::EVALUATION_TITLE
            );
            println!(
                "  published    {} (id {published_id})\n    results page  {base}/campaigns/{published_id}/results\n    \
                 verify it     python3 tools/verify_results.py --base-url {base} --campaign {published_id}",
                demo::PUBLISHED_TITLE
            );
            if links.is_empty() {
                println!("  (its SMS survey links were printed on the first run)");
            } else {
                println!("  SMS survey links (open one in a browser and answer it):");
                for link in &links {
                    println!("    {link}");
                }
            }
            println!("\nStop with Ctrl-C.");
            app.run_until_stopped().await?;
        }
        Command::Verify { campaign, file } => {
            let report = match (file, campaign) {
                (Some(path), _) => {
                    let f = std::fs::File::open(&path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    verify::from_reader(std::io::BufReader::with_capacity(1 << 20, f))?
                }
                (None, Some(id)) => {
                    let services = startup::services(settings).await?;
                    verify::from_store(services.store.as_ref(), id).await?
                }
                (None, None) => anyhow::bail!("give --campaign ID or --file PATH"),
            };
            println!(
                "checked {} entries in {:.1} ms ({:.0} entries/s); head {}",
                report.entries,
                report.elapsed.as_secs_f64() * 1000.0,
                report.rate(),
                report.head_hash
            );
            if report.problem.is_none() && !report.votes.is_empty() {
                let counts: Vec<String> = report
                    .votes
                    .iter()
                    .map(|(c, n)| format!("{c}={n}"))
                    .collect();
                println!(
                    "counted votes by candidate, from the entries: {}",
                    counts.join(" ")
                );
            }
            if report.problem.is_none() {
                for r in &report.results {
                    println!(
                        "{} results frozen at seq {} (snapshot {}): recounted from the entries, all numbers agree",
                        r.results.stage.as_str(),
                        r.seq,
                        r.snapshot_hash
                    );
                }
                if let Some(last) = report
                    .results
                    .iter()
                    .rev()
                    .find(|r| r.results.stage == minyi::domain::results::Stage::Final)
                {
                    for cat in &last.results.categories {
                        let winners: Vec<String> = cat
                            .candidates
                            .iter()
                            .filter(|c| c.winner)
                            .map(|c| {
                                format!("{}. {} ({}号, {})", c.rank, c.name, c.number, c.score)
                            })
                            .collect();
                        println!("  {}: {}", cat.name, winners.join("; "));
                    }
                }
            }
            match &report.problem {
                None if report.state_compared => {
                    println!(
                        "OK: the chain holds, and the database matches the state it records and the votes it counts"
                    )
                }
                None => println!("OK: the chain holds"),
                Some(b) => {
                    println!("FAILED at seq {}: {}", b.seq, b.reason);
                    return Err(VerifyFailed.into());
                }
            }
        }
        Command::Reconcile { campaign } => {
            let services = startup::services(settings).await?;
            let c = services.store.get_campaign(campaign).await?;
            let diff = recount::differences(&services, c.id).await?;
            let mut ids: Vec<_> = diff.keys().copied().collect();
            ids.sort();
            for id in &ids {
                let (live, ledger) = diff[id];
                println!("candidate {id}: live {live}, ledger {ledger}");
            }
            recount::rebuild(&services, &c, chrono::Utc::now(), true).await?;
            let left = recount::differences(&services, c.id).await?;
            anyhow::ensure!(
                left.is_empty(),
                "counts still differ after the rebuild: {left:?}"
            );
            println!(
                "{} difference(s) found; counters and quotas rebuilt from the ledger",
                ids.len()
            );
        }
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    username,
                    role,
                    unit,
                    rater_group,
                },
        } => {
            telemetry::init(&settings);
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role `{role}`: use admin, organizer, unit_handler, expert or auditor"
                )
            })?;
            let group = rater_group
                .map(|g| {
                    RaterGroup::parse(&g)
                        .filter(|g| g.is_staff())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "unknown rater group `{g}`: use party_member, leader or supervisor"
                            )
                        })
                })
                .transpose()?;
            let password = read_password()?;
            let services = startup::services(settings).await?;
            let id = staff_auth::create_user(
                services.store.as_ref(),
                &username,
                &password,
                role,
                unit.as_deref(),
            )
            .await?;
            if let Some(g) = group {
                services.store.set_rater_group(id, Some(g)).await?;
            }
            println!("created staff account {username} (id {id}, role {role})");
        }
    }
    Ok(())
}

/// A failed verification: the report was printed, the exit status says it.
#[derive(Debug, thiserror::Error)]
#[error("verification failed")]
struct VerifyFailed;

fn override_bind(settings: &mut Settings, bind: Option<String>) -> anyhow::Result<()> {
    if let Some(b) = bind {
        settings.bind = b
            .parse()
            .map_err(|_| anyhow::anyhow!("--bind: `{b}` is not an address like 127.0.0.1:8080"))?;
    }
    Ok(())
}

/// The password for `create-user`: prompted twice on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat: ")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn demo_password() -> String {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// A database URL without its password, for printing.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}
