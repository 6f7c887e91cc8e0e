//! `check-config`: validate a config, observers and reference files
//! included, and print what it sets up, with the alpha each feature is
//! tested at and the monitors that could never work on the signals a
//! sample of records carries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::fs::File;
use std::path::Path;

use std::process::ExitCode;

use anyhow::Context;
use model_monitor::observers::builtin_registry;
use model_monitor::runtime::source::DEFAULT_MAX_LINE_BYTES;
use model_monitor::runtime::{Config, LineSource};
use model_monitor::signal::{Signal, SignalValue, missing_quality_name};
use model_monitor::source::Source;
use model_monitor::strategies::MonitorPlan;
use tokio_util::sync::CancellationToken;

use crate::output::Stdout;
use crate::report::clean;
use crate::{exit_for, load_config};

/// Validates `file` and prints what it sets up (see [`render`]).
pub(crate) async fn run(file: &Path, records: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (config, ctx) = load_config(Some(file))?;
    let plan = config.plan(&ctx)?;
    plan.load_references()?;
    let observers: Vec<String> =
        config.build_observers(&builtin_registry(), &ctx)?.iter().map(|o| o.name().to_owned()).collect();
    let sample = match records {
        Some(path) => Some(sample(path).await?),
        None => None,
    };
    let mut text = render(file, &config, &plan, &observers, sample.as_ref())?;
    if let Some(path) = records {
        render_fits(&mut text, &plan, path).await?;
    }
    let stdout = Stdout::new(CancellationToken::new());
    stdout.print(&text);
    Ok(exit_for(&stdout))
}

/// Lines of `--records` read to learn each model's signals.
const SAMPLE_LINES: usize = 10_000;

/// The signals each model of a sample carries, and which are categorical.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    models: BTreeMap<String, (BTreeSet<Signal>, BTreeSet<Signal>)>,
    /// Lines that were not records (bad JSON, bad UTF-8, too long).
    skipped: u64,
}

/// Reads the first lines of `path` with the replay's own reader: a bad or
/// over-long line is skipped and counted, never the end of the check.
pub(crate) async fn sample(path: &Path) -> anyhow::Result<Sample> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut source = LineSource::spawn("records", path.display().to_string(), file, DEFAULT_MAX_LINE_BYTES);
    let mut sample = Sample::default();
    let mut lines = 0;
    while lines < SAMPLE_LINES {
        let Some(batch) = source.next_batch().await? else { break };
        lines += batch.len();
        sample.skipped += batch.rejected.len() as u64;
        for (_, record) in batch.records {
            let (signals, categorical) = sample.models.entry(record.model.clone()).or_default();
            record.for_each_signal(|s, v| {
                signals.insert(s.to_owned());
                if matches!(v, SignalValue::Categorical(_)) {
                    categorical.insert(s.to_owned());
                }
            });
            // Each feature also has its missing-value share.
            for name in record.features.keys().chain(&record.null_features) {
                signals.insert(Signal::Quality(missing_quality_name(name)));
            }
        }
    }
    Ok(sample)
}

/// The report of a config that built: monitors, policies, alphas, observers.
pub(crate) fn render(
    file: &Path,
    config: &Config,
    plan: &MonitorPlan,
    observers: &[String],
    sample: Option<&Sample>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", file.display());
    let _ = writeln!(out, "monitors:");
    if plan.monitors.is_empty() {
        let _ = writeln!(out, "  (none: records are accepted and counted, nothing is detected)");
    }
    for (i, m) in plan.monitors.iter().enumerate() {
        let scope = m.models.as_ref().map_or_else(|| "every model".to_owned(), |ms| ms.join(", "));
        let mut detector = m.detector.params();
        if let Some(table) = detector.as_object_mut() {
            table.retain(|_, v| !v.is_null());
        }
        let damping = if (m.fire_after, m.resolve_after) == (1, 1) {
            String::new()
        } else {
            format!(", fire_after {}, resolve_after {}", m.fire_after, m.resolve_after)
        };
        let _ = writeln!(out, "  [{i}] {} on {} ({scope}): {detector}{damping}", m.detector.kind(), m.signal);
    }
    let p = &config.policy;
    let _ = writeln!(out, "policy: trigger {}, cooldown {}, min_samples {}", p.trigger, p.cooldown, p.min_samples);
    for (model, m) in &config.models {
        if let Some(p) = &m.policy {
            let _ = writeln!(
                out,
                "policy for {model}: trigger {}, cooldown {}, min_samples {}",
                p.trigger, p.cooldown, p.min_samples
            );
        }
    }
    if let Some(sample) = sample {
        render_unusable(&mut out, plan, sample);
    }
    render_alphas(&mut out, plan, sample)?;
    let _ = writeln!(out, "observers:");
    if observers.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for name in observers {
        let _ = writeln!(out, "  {name}");
    }
    let server = &config.server;
    let token = server.token_env.as_deref().map_or_else(|| "no token".to_owned(), |v| format!("token from ${v}"));
    let _ = writeln!(out, "server (model-monitor serve): listen {}, {token}", server.listen);
    Ok(out)
}

/// Warns of monitors whose detector takes numbers, on signals the sample
/// shows are categorical: they are not set up there and leave their family.
fn render_unusable(out: &mut String, plan: &MonitorPlan, sample: &Sample) {
    if sample.skipped > 0 {
        let _ = writeln!(out, "records: {} lines of the sample were not records and were skipped", sample.skipped);
    }
    for (model, (_, categorical)) in &sample.models {
        let categorical: Vec<Signal> = categorical.iter().cloned().collect();
        for (i, signal) in plan.unusable(model, &categorical) {
            let kind = plan.monitors[i].detector.kind();
            let _ = writeln!(
                out,
                "warning: [{i}] {kind} takes numbers, but {} of {} is categorical: it is not set up there \
                 and does not count in the correction (use chi_square, psi or jensen_shannon)",
                signal,
                clean(model)
            );
        }
    }
}

/// The gates of each monitor's alarms: for the p-value tests, the alpha
/// each signal is tested at (one family per model version, across
/// monitors) and the effect size it must also reach; for the others, their
/// effect size. Signals come from a sample of records, else from the
/// reference files.
fn render_alphas(out: &mut String, plan: &MonitorPlan, sample: Option<&Sample>) -> anyhow::Result<()> {
    let gated: Vec<_> = plan
        .monitors
        .iter()
        .enumerate()
        .filter(|(_, m)| m.detector.p_value_family().is_some() || m.detector.min_effect().is_some())
        .collect();
    if gated.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        out,
        "alarm gates (a p-value test's alpha is shared by every p-value test of a model version, across monitors):"
    );
    for (i, m) in &gated {
        let effect = m.detector.min_effect().map(|e| format!(", min_effect {e}")).unwrap_or_default();
        match m.detector.p_value_family() {
            Some((correction, alpha)) => {
                let correction = format!("{correction:?}").to_lowercase();
                let _ = writeln!(
                    out,
                    "  [{i}] {} on {}: alpha {alpha}, correction {correction}{effect}",
                    m.detector.kind(),
                    m.signal
                );
            }
            None => {
                let _ = writeln!(out, "  [{i}] {} on {}: no p-value{effect}", m.detector.kind(), m.signal);
            }
        }
    }
    // The signals of each model: from the records, else from the files.
    let mut models: BTreeMap<String, (BTreeSet<Signal>, BTreeSet<Signal>)> = BTreeMap::new();
    let from_files = sample.is_none();
    match sample {
        Some(sample) => models.clone_from(&sample.models),
        None => {
            for (_, m) in &gated {
                let Some(names) = m.detector.reference_signals()? else { continue };
                let model = m.models.as_ref().and_then(|ms| ms.first()).cloned().unwrap_or_default();
                let (signals, _) = models.entry(model).or_default();
                for signal in names.iter().filter_map(|s| s.parse::<Signal>().ok()) {
                    if let Signal::Feature(f) = &signal {
                        signals.insert(Signal::Quality(missing_quality_name(f)));
                    }
                    signals.insert(signal);
                }
            }
        }
    }
    let mut listed = false;
    for (model, (signals, categorical)) in &models {
        let signals: Vec<Signal> = signals.iter().cloned().collect();
        let categorical: Vec<Signal> = categorical.iter().cloned().collect();
        let alphas = plan.effective_alphas(model, &signals, &categorical);
        if alphas.is_empty() {
            continue;
        }
        let whose = if model.is_empty() { "every model".to_owned() } else { format!("model {}", clean(model)) };
        let source = if from_files { ", signals of the reference files" } else { "" };
        let _ = writeln!(out, "  {whose}{source}:");
        for e in &alphas {
            let effect = e.min_effect.map(|x| format!(", min_effect {x}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "      [{}] {}: {:.6} ({} tests{source}){effect}",
                e.monitor, e.signal, e.per_test, e.tests
            );
            listed = true;
        }
    }
    if !listed && gated.iter().any(|(_, m)| m.detector.p_value_family().is_some()) {
        let example = model_monitor::correction::Correction::Bonferroni.per_test_alpha(0.05, 10);
        let _ = writeln!(
            out,
            "      each p-value test gets a share of its alpha set by how many p-value tests its model \
             version has (with 10 and alpha 0.05: {example:.6}); give --records FILE to list them"
        );
    }
    Ok(())
}

/// Fits each `[[performance]]` estimate and `[[reconstruction]]` on the
/// first records of each model in `path` (as many as its reference), as
/// the monitor would on a model version's first records, and reports what
/// was fitted: the calibration's reliability (expected calibration error
/// before and after, on the reference), the components kept and the
/// variance they explain, and the reference windows' values.
async fn render_fits(out: &mut String, plan: &MonitorPlan, path: &Path) -> anyhow::Result<()> {
    use model_monitor::strategies::performance::{ESTIMATED_METRICS, fit_on};
    if plan.performance.iter().all(|p| p.estimate.is_none()) && plan.reconstruction.is_empty() {
        return Ok(());
    }
    let wanted = plan
        .performance
        .iter()
        .filter_map(|p| p.estimate.as_ref().map(|e| e.reference + 16 * p.window))
        .chain(plan.reconstruction.iter().map(|r| r.reference()))
        .max()
        .unwrap_or(0);
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut source = LineSource::spawn("records", path.display().to_string(), file, DEFAULT_MAX_LINE_BYTES);
    let mut models: BTreeMap<String, Vec<model_monitor::record::Record>> = BTreeMap::new();
    let mut lines = 0;
    while lines < wanted {
        let Some(batch) = source.next_batch().await? else { break };
        lines += batch.len();
        for (_, record) in batch.records {
            models.entry(record.model.clone()).or_default().push(record);
        }
    }
    let _ = writeln!(out, "fitted on {} (the first records of each model):", path.display());
    for (model, records) in &models {
        let perf = plan.performance.iter().find(|p| p.applies_to(model));
        let recon = plan.reconstruction.iter().find(|r| r.applies_to(model));
        let report = fit_on(perf, recon, records);
        let name = clean(model);
        match (perf.and_then(|p| p.estimate.as_ref()), &report.estimation) {
            (Some(_), Some(fit)) => {
                let calibration = if fit.calibration.is_empty() {
                    "none".to_owned()
                } else {
                    format!("isotonic, {} points", fit.calibration.len())
                };
                let _ = writeln!(
                    out,
                    "  {name}: estimation fitted on {} labelled predictions; calibration {calibration}; \
                     expected calibration error {:.4} before, {:.4} after",
                    fit.reference, fit.ece.0, fit.ece.1
                );
                let se: Vec<String> = ESTIMATED_METRICS
                    .iter()
                    .enumerate()
                    .map(|(i, m)| format!("{m} {:.4}", fit.sampling_error(i, perf.map_or(1, |p| p.window))))
                    .collect();
                let _ = writeln!(out, "    sampling error per window: {}", se.join(", "));
            }
            (Some(e), None) => {
                let _ = writeln!(
                    out,
                    "  {name}: estimation not fitted: fewer than {} labelled predictions with a score",
                    e.reference
                );
            }
            _ => {}
        }
        match (recon, &report.reconstruction) {
            (Some(_), Some((fit, errors))) => {
                let _ = writeln!(
                    out,
                    "  {name}: reconstruction of {} features fitted: {} components explain {:.1}% of the variance",
                    fit.features.len(),
                    fit.components,
                    100.0 * fit.explained
                );
                let shown: Vec<String> = errors.iter().map(|e| format!("{e:.4}")).collect();
                let _ = writeln!(out, "    reference windows' reconstruction error: {}", shown.join(", "));
            }
            (Some(r), None) => {
                let _ = writeln!(out, "  {name}: reconstruction not fitted: fewer than {} records", r.reference());
            }
            _ => {}
        }
    }
    Ok(())
}
