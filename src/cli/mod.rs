//! Command-line parsing and dispatch. Each subcommand group lives in its own file; `anyhow`
//! is used only here, at the edge.

mod audit;
mod backup;
mod broadcast;
mod client;
mod config;
mod contacts;
mod daemon;
mod demo;
mod detect;
mod inbox;
mod jobs;
mod modem;
mod outage;
mod pdu;
mod report;
mod sim;
mod subscriptions;
mod template;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "gridsms",
    version,
    about = "SMS notification gateway for a power-supply bureau"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode and decode SMS PDUs (3GPP TS 23.040).
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
    /// Talk to one modem by hand: identity, a test send, listen for inbound SMS.
    #[command(subcommand)]
    Modem(modem::ModemCommand),
    /// Run a simulated modem on a pseudo-terminal.
    Sim(sim::SimArgs),
    /// Validate a config file and print the effective configuration (secrets redacted).
    CheckConfig(config::CheckConfigArgs),
    /// Run the gateway daemon (foreground; systemd runs it as Type=notify).
    Run(daemon::RunArgs),
    /// Queue a message through the running daemon.
    Send(client::SendArgs),
    /// The queue and the latest messages, or one message by id.
    Status(client::StatusArgs),
    /// The modems: state, signal, carrier, quota use (from the daemon), or `detect`.
    Modems(client::ModemsArgs),
    /// Message counts by state and category.
    Queue(client::ApiArgs),
    /// The marketing jobs: schedules, last runs, errors; `jobs run NAME` runs one now.
    Jobs(jobs::JobsArgs),
    /// Copy the SQLite outbox to a file, consistently, while the daemon runs.
    Backup(backup::BackupArgs),
    /// Broadcast to the customers of stations, feeders or areas (or preview with --dry-run).
    Broadcast(broadcast::BroadcastArgs),
    /// Cancel a queued message or what is still queued of a whole send.
    Cancel(broadcast::CancelArgs),
    /// The audit trail: who did what, when, to how many.
    Audit(audit::AuditArgs),
    /// Delivery statistics, failed numbers, SIM usage; --csv for spreadsheets.
    Report(report::ReportArgs),
    /// Planned-outage notices for a feeder or transformer areas (95598 desk), list, cancel.
    Outage(outage::OutageArgs),
    /// Write a demo marketing database (stations, feeders, customers, bills, outages).
    DemoDb(demo::DemoDbArgs),
    /// Notice templates: `template check` renders each with sample data.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// What customers texted in and how each message was handled.
    Inbox(inbox::InboxArgs),
    /// Phone ↔ account bindings waiting for staff: list, approve, reject.
    Subscriptions(subscriptions::SubscriptionsArgs),
    /// The contacts store: import old phone lists.
    Contacts(contacts::ContactsArgs),
}

/// Exit code for bad input, as the CLI contract promises.
pub const EXIT_BAD_INPUT: u8 = 2;

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Pdu(cmd) => pdu::run(cmd),
        Command::Modem(cmd) => modem::run(cmd),
        Command::Sim(args) => sim::run(args),
        Command::CheckConfig(args) => config::run(args),
        Command::Run(args) => daemon::run(args),
        Command::Send(args) => client::send(args),
        Command::Status(args) => client::status(args),
        Command::Modems(args) => match args.command {
            Some(client::ModemsCommand::Detect(detect)) => detect::run(detect),
            None => client::modems(args.api),
        },
        Command::Queue(args) => client::queue(args),
        Command::Backup(args) => backup::run(args),
        Command::Jobs(args) => jobs::run(args),
        Command::Broadcast(args) => broadcast::broadcast(args),
        Command::Cancel(args) => broadcast::cancel(args),
        Command::Audit(args) => audit::run(args),
        Command::Report(args) => report::run(args),
        Command::Template(cmd) => template::run(cmd),
        Command::Outage(args) => outage::run(args),
        Command::DemoDb(args) => demo::run(args),
        Command::Inbox(args) => inbox::run(args),
        Command::Subscriptions(args) => subscriptions::run(args),
        Command::Contacts(args) => contacts::run(args),
    }
}
