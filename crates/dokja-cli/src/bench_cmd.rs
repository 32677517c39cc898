//! `dokja bench ...`: run benchmark suites against a model, resume runs, report and export
//! (see crates/dokja-runner and docs/bench-runs.md).
//!
//! Exit codes: 0 success; 1 `run` finished with failed samples (resume the run to retry
//! them); 2 usage or input error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use dokja_runner::{
    BackendChoice, ExecOptions, ReferenceSpec, ResultOptions, RunConfig, Store, compute_results,
    export_jsonl, load_registry, make_backend, report, resume_run, start_run,
};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
    /// The run store (SQLite file; created on first use).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "dokja-runs.sqlite"
    )]
    pub db: PathBuf,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Run suites against a model (or resume a run with --resume RUN_ID).
    Run(RunArgs),
    /// Scores, intervals and the 95% rule of a run, as Markdown, HTML and JSON.
    Report(ReportArgs),
    /// List the runs in the store.
    List,
    /// Write every sample of a run as JSON lines.
    Export {
        run_id: String,
        #[arg(long, value_name = "FILE")]
        jsonl: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Chat,
    Completion,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AveragingArg {
    Micro,
    Macro,
}

#[derive(Args)]
pub struct RunArgs {
    /// Suites or tasks, comma-separated: `kmmlu`, `kmmlu/Criminal-Law`, `kmmlu-criminal-law`.
    #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
    pub suite: Vec<String>,
    /// Folder of benchmark files (each suite in a folder named after its task file).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    /// A task file of yours, in addition to the shipped suites (repeatable).
    #[arg(long = "task-file", value_name = "FILE")]
    pub task_files: Vec<PathBuf>,
    /// Data files for one task, overriding the lookup: `TASK=PATH[,PATH...]` (repeatable).
    #[arg(long = "file", value_name = "TASK=PATHS")]
    pub files: Vec<String>,
    /// OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.
    #[arg(long, value_name = "URL", conflicts_with = "in_process")]
    pub endpoint: Option<String>,
    /// Model name to ask the server for.
    #[arg(long)]
    pub model: Option<String>,
    /// Run a GGUF model in-process.
    #[arg(long, value_name = "MODEL.gguf")]
    pub in_process: Option<PathBuf>,
    /// Test only: the deterministic fake backend of dokja-runner, with its fault spec.
    #[arg(long, hide = true, value_name = "SPEC")]
    pub fake_backend: Option<String>,
    /// At most N items per task (a seeded sample).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seed of the --limit sample and of the bootstrap intervals.
    #[arg(long, default_value_t = 20_240_501)]
    pub seed: u64,
    /// Name reference registries match this run by [default: the model's name].
    #[arg(long)]
    pub label: Option<String>,
    /// Chat or completion prompts [default: each task file's].
    #[arg(long, value_enum)]
    pub prompt_mode: Option<ModeArg>,
    /// Attempts per request on transient errors.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// Neither read nor fill the request cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Continue this run (its tasks and settings come from the store).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Resume even if tasks, data, prompts or the model identity changed.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    pub run_id: String,
    /// A reference run in the same store (repeatable).
    #[arg(long = "reference", value_name = "RUN_ID")]
    pub references: Vec<String>,
    /// Reference registry (JSON): global models released in the six months before --eval-date,
    /// each matched to the newest run labelled with its name.
    #[arg(long, value_name = "FILE")]
    pub references_file: Option<PathBuf>,
    /// Evaluation date for the registry window, YYYY-MM-DD [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    pub eval_date: Option<String>,
    /// Suite averaging [default: macro].
    #[arg(long, value_enum)]
    pub averaging: Option<AveragingArg>,
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.command {
        BenchCommand::Run(a) => run_cmd(&args.db, a),
        BenchCommand::Report(a) => report_cmd(&args.db, a),
        BenchCommand::List => list_cmd(&args.db),
        BenchCommand::Export { run_id, jsonl } => {
            let store = open_existing(&args.db)?;
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&jsonl)
                    .with_context(|| format!("cannot create {}", jsonl.display()))?,
            );
            let n = export_jsonl(&store, &run_id, &mut out)?;
            std::io::Write::flush(&mut out)
                .with_context(|| format!("cannot write {}", jsonl.display()))?;
            println!("{n} samples written to {}", jsonl.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open_existing(db: &Path) -> Result<Store> {
    if !db.is_file() {
        bail!("run store {} does not exist", db.display());
    }
    Ok(Store::open(db)?)
}

fn parse_files(specs: &[String]) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let Some((task, paths)) = s.split_once('=') else {
            bail!("--file {s:?}: expected TASK=PATH[,PATH...]");
        };
        out.insert(
            task.to_string(),
            paths.split(',').map(PathBuf::from).collect(),
        );
    }
    Ok(out)
}

fn run_cmd(db: &Path, a: RunArgs) -> Result<ExitCode> {
    let choice = match (&a.fake_backend, &a.endpoint, &a.in_process) {
        (Some(spec), _, _) => BackendChoice::Fake { spec: spec.clone() },
        (None, Some(url), _) => BackendChoice::Endpoint {
            url: url.clone(),
            model: a.model.clone(),
        },
        (None, None, Some(path)) => BackendChoice::InProcess { path: path.clone() },
        (None, None, None) => {
            bail!("say which model answers: --endpoint URL or --in-process MODEL.gguf")
        }
    };
    let backend = make_backend(&choice)?;
    let opts = ExecOptions {
        concurrency: a.concurrency.max(1),
        max_attempts: a.max_attempts.max(1),
        use_cache: !a.no_cache,
        progress: !a.quiet,
        force: a.force,
        ..ExecOptions::default()
    };
    let mut store = Store::open(db)?;
    let outcome = match &a.resume {
        Some(run_id) => resume_run(&mut store, backend.as_ref(), run_id, &opts)?,
        None => {
            let config = RunConfig {
                tasks: a.suite.clone(),
                task_files: a.task_files.clone(),
                data_dir: a.data.clone().unwrap_or_default(),
                data_files: parse_files(&a.files)?,
                limit: a.limit,
                seed: a.seed,
                prompt_mode: a.prompt_mode.map(|m| match m {
                    ModeArg::Chat => dokja_tasks::PromptMode::Chat,
                    ModeArg::Completion => dokja_tasks::PromptMode::Completion,
                }),
                label: a.label.clone(),
            };
            start_run(&mut store, backend.as_ref(), &config, &opts)?
        }
    };
    let counts = store.counts(&outcome.run_id)?;
    println!(
        "run {}: {} of {} samples done ({} answered now, {} from cache), {} failed",
        outcome.run_id,
        counts.done,
        counts.planned,
        outcome.answered,
        outcome.cached,
        counts.failed
    );
    if counts.failed > 0 {
        println!(
            "retry the failed samples with: dokja bench run --resume {} --db {}",
            outcome.run_id,
            db.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn report_cmd(db: &Path, a: ReportArgs) -> Result<ExitCode> {
    let store = open_existing(db)?;
    let mut refs: Vec<ReferenceSpec> = a
        .references
        .iter()
        .cloned()
        .map(ReferenceSpec::Run)
        .collect();
    if let Some(file) = &a.references_file {
        let date_text = a.eval_date.clone().unwrap_or_else(dokja_runner::today);
        let evaluation_date = date_text
            .parse()
            .map_err(|e| anyhow::anyhow!("--eval-date {date_text:?}: {e}"))?;
        refs.push(ReferenceSpec::Registry {
            registry: load_registry(file)?,
            evaluation_date,
        });
    } else if a.eval_date.is_some() {
        bail!("--eval-date needs --references-file");
    }
    let opts = ResultOptions {
        averaging: a.averaging.map(|x| match x {
            AveragingArg::Micro => dokja_evalstats::Averaging::Micro,
            AveragingArg::Macro => dokja_evalstats::Averaging::Macro,
        }),
        ..ResultOptions::default()
    };
    let results = compute_results(&store, &a.run_id, &refs, &opts)?;
    let write = |path: &Path, text: String| -> Result<()> {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(p) = &a.json {
        write(p, serde_json::to_string_pretty(&results)? + "\n")?;
    }
    if let Some(p) = &a.html {
        write(p, report::html(&results))?;
    }
    if let Some(p) = &a.markdown {
        write(p, report::markdown(&results))?;
    }
    if a.json.is_none() && a.html.is_none() && a.markdown.is_none() {
        print!("{}", report::markdown(&results));
    }
    Ok(ExitCode::SUCCESS)
}

fn list_cmd(db: &Path) -> Result<ExitCode> {
    let store = open_existing(db)?;
    println!(
        "{:<24} {:<24} {:<20} {:>8} {:>8} {:>7}  tasks",
        "run", "created", "label", "planned", "done", "failed"
    );
    for r in store.runs()? {
        let c = store.counts(&r.run_id)?;
        let tasks: Vec<String> = store
            .run_tasks(&r.run_id)?
            .into_iter()
            .map(|t| t.task)
            .collect();
        let shown = if tasks.len() > 4 {
            format!("{} ... ({} tasks)", tasks[..4].join(","), tasks.len())
        } else {
            tasks.join(",")
        };
        println!(
            "{:<24} {:<24} {:<20} {:>8} {:>8} {:>7}  {}",
            r.run_id, r.created, r.label, c.planned, c.done, c.failed, shown
        );
    }
    Ok(ExitCode::SUCCESS)
}
