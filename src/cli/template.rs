//! `gridsms template check [--config FILE]`: render every notice template with sample data and
//! show its text, length and segment count (the codec's own splitting), so a bureau sees what
//! a longer signature or template costs before the first bill run.

use clap::{Args, Subcommand};
use gridsms::config;
use gridsms::templates::{NoticeKind, Templates};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render each template with sample data: text, characters, segments.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file whose [templates] to render; the built-in defaults without it.
    #[arg(long, short, env = "GRIDSMS_CONFIG")]
    pub config: Option<PathBuf>,
    /// One JSON object per template instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: TemplateCommand) -> ExitCode {
    match cmd {
        TemplateCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let templates = match &args.config {
        None => Templates::default(),
        Some(path) => match config::load(path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("warning: {w}");
                }
                loaded.config.templates
            }
            Err(e) => {
                for d in e.diagnostics() {
                    eprintln!("error: {d}");
                }
                return ExitCode::from(super::EXIT_BAD_INPUT);
            }
        },
    };
    for kind in NoticeKind::ALL {
        let text = templates.render(kind, &Templates::sample_vars(kind));
        let chars = text.chars().count();
        let (segments, encoding) = match gridsms::pdu::preview(&text) {
            Ok(p) => (p.segments, format!("{:?}", p.encoding).to_lowercase()),
            Err(e) => {
                eprintln!("error: templates.{kind}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "template": kind.key(),
                    "text": text,
                    "chars": chars,
                    "segments": segments,
                    "encoding": encoding,
                })
            );
        } else {
            println!("[{kind}] {chars} characters, {segments} segment(s), {encoding}");
            println!("  {text}");
        }
    }
    ExitCode::SUCCESS
}
