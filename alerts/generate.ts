// Writes every file derived from the detector declarations (DetectorDeclaration in each
// detectors/<name>.ts, listed in detectors/registry.ts), so a detector is described in one place:
// - alerts/ztwatch-detectors.rules.yml: one alert per detector (whole file);
// - alerts/tests/detectors.generated.test.yml: promtool unit tests of each of those alerts, firing
//   and not firing (whole file);
// - the blocks between `<!-- generated:<block> -->` and `<!-- end generated:<block> -->` markers in
//   README.md (detectors table), docs/alerts.md (detector alerts table), docs/detectors.md
//   (rollups table) and docs/runbooks.md (one runbook section per detector alert).
// Output is deterministic, so CI regenerates and compares (test/alerts/generate.test.ts).
//   node bin/run-ts.js alerts/generate.ts           write the files
//   node bin/run-ts.js alerts/generate.ts --check   exit 1 when a committed file differs
//   --root DIR                                      another checkout (default: this one)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyDetector, DetectorAlert, DetectorDeclaration } from '../detectors/detector.ts';
import { DETECTORS } from '../detectors/registry.ts';
import { DETECTOR_ROLLUPS, type RollupName } from '../detectors/rollups.ts';

/** The checkout these files belong to. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Where each alert's runbook section lives; the anchor is the alert name in lower case. */
export const RUNBOOK_URL = 'https://github.com/ztwatch/ztwatch/blob/main/docs/runbooks.md';
/** Generated files, relative to the root. */
export const RULES_FILE = 'alerts/ztwatch-detectors.rules.yml';
export const RULE_TESTS_FILE = 'alerts/tests/detectors.generated.test.yml';
/** Docs files with generated blocks, and the block names each holds. */
export const DOC_BLOCKS = {
  'README.md': ['detectors'],
  'docs/alerts.md': ['detector-alerts'],
  'docs/detectors.md': ['detector-rollups'],
  'docs/runbooks.md': ['detector-runbooks'],
} as const satisfies Record<string, readonly string[]>;

/** Longest line of generated prose, in characters. */
const WRAP_COLUMNS = 100;

/** A word that would change meaning at the start of a Markdown line (a list item, a heading, a quote). */
const MARKDOWN_LINE_START = /^([-*+>]|#+|\d+[.)])$/;

/**
 * Words of `text` in lines of at most `width` characters (a longer word stands alone). A template
 * (`{{ … }}`) is one word; no line starts with a word Markdown would read as a block marker.
 */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[][] = [];
  let line: string[] = [];
  let length = 0;
  for (const word of text.match(/\S*\{\{.*?\}\}\S*|\S+/g) ?? []) {
    if (line.length > 0 && length + 1 + word.length > width) {
      lines.push(line);
      line = [];
      length = 0;
      if (MARKDOWN_LINE_START.test(word)) {
        const previous = lines[lines.length - 1] as string[];
        if (previous.length > 1) line.push(previous.pop() as string);
        length = line.join(' ').length;
      }
    }
    line.push(word);
    length += (line.length > 1 ? 1 : 0) + word.length;
  }
  if (line.length > 0) lines.push(line);
  return lines.map((words) => words.join(' '));
}

/** A YAML single-quoted scalar. */
function quoteYaml(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A YAML scalar: plain when it is a simple word, else single-quoted. */
function scalarYaml(value: string): string {
  return /^[A-Za-z][A-Za-z0-9_-]*$/.test(value) && !/^(true|false|yes|no|on|off|null)$/i.test(value) ? value : quoteYaml(value);
}

/** A YAML folded block scalar (`>-`) at `indent` spaces: read back, its lines join with single spaces. */
function foldYaml(text: string, indent: number): string {
  const pad = ' '.repeat(indent);
  return `>-\n${wrapWords(text, WRAP_COLUMNS - indent).map((l) => pad + l).join('\n')}`;
}

/** The runbook anchor of an alert. */
export function runbookUrl(alert: DetectorAlert): string {
  return `${RUNBOOK_URL}#${alert.name.toLowerCase()}`;
}

/** PromQL of a detector's alert: its firing anomalies (never `info`), one per anomaly, with `src`/`dst` from the subject. */
export function renderAlertExpr(detector: DetectorDeclaration): string {
  const series = `max by (detector, severity, subject) (ztwatch_anomaly_firing{detector="${detector.name}", severity!="info"})`;
  // label_replace keeps the series unchanged where the regex does not match the whole subject.
  const [first, second] =
    detector.alert.subject === 'edge'
      ? ['"src", "$1", "subject", "(.+?) -> .+"', '"dst", "$1", "subject", ".+? -> (.+)"']
      : ['"src", "$1", "subject", "(.+)"', '"src", "$1", "subject", "(.+?) -> .+"'];
  return `label_replace(label_replace(\n  ${series},\n  ${first}),\n  ${second})`;
}

const RULES_HEADER = `# ztwatch detector alerts: one alert per detector class (DESIGN §6), evidence rather than pages:
# alerts/alertmanager.yml routes them to a receiver without integration, so they are visible in
# Prometheus and Alertmanager but never sent. Pages come from incidents
# (alerts/ztwatch-incidents.rules.yml), which group these anomalies by actor and cause.
# Generated by alerts/generate.ts from the detector declarations (detectors/<name>.ts, \`alert\`):
# edit those and run \`npm run alerts\`, never this file.
# Driven by the ztwatch_anomaly_firing gauge that the detector role exports while an anomaly is open
# (labels detector, severity, subject; value = score). The detectors already open an anomaly once
# per (detector, subject) and resolve it after a quiet period, so these rules only wait a short
# \`for:\` to ride out one missed scrape, and never re-derive thresholds of their own.
#
# Conventions shared by every rule below:
# - \`max by (detector, severity, subject)\` folds duplicate series (two scrapes of the same process
#   under different jobs, a restarted instance) into one alert per anomaly.
# - \`severity\` comes from the series (low | medium | high | critical). \`info\` anomalies (e.g. a
#   brand-new identity calling its dependencies) stay on the dashboards and never notify.
# - A subject of the form \`A -> B\` is split into \`src\` = A and \`dst\` = B, so Alertmanager can
#   group and inhibit by source (see alerts/alertmanager.yml). The source-centred detectors
#   (subject: source) name the source as their subject, so \`src\` falls back to it.
# - \`team: security\` routes to \`ztwatch-security-evidence\` in alerts/alertmanager.yml (never sent).
`;

/** alerts/ztwatch-detectors.rules.yml. */
export function renderDetectorRules(detectors: readonly AnyDetector[]): string {
  const rules = detectors.map((d) => {
    const labels = Object.entries(d.alert.labels).map(([k, v]) => `          ${k}: ${scalarYaml(v)}`);
    return [
      `      - alert: ${d.alert.name}`,
      '        expr: |',
      ...renderAlertExpr(d)
        .split('\n')
        .map((l) => `          ${l}`),
      `        for: ${d.alert.for}`,
      '        labels:',
      ...labels,
      '        annotations:',
      `          summary: ${quoteYaml(d.alert.summary)}`,
      `          description: ${foldYaml(d.alert.description, 12)}`,
      `          runbook_url: ${runbookUrl(d.alert)}`,
    ].join('\n');
  });
  return `${RULES_HEADER}groups:\n  - name: ztwatch-detectors\n    rules:\n${rules.join('\n\n')}\n`;
}

/**
 * Renders the templates the declarations use as Prometheus would for one alert; throws on any
 * other template, so a declaration cannot use one its generated test does not check.
 */
export function renderAlertTemplate(template: string, labels: Readonly<Record<string, string>>, value: number): string {
  return template.replace(/\{\{(.*?)\}\}/g, (whole, inner: string) => {
    const label = /^ \$labels\.([a-z_]+) $/.exec(inner);
    if (label) {
      const found = labels[label[1] as string];
      if (found === undefined) throw new Error(`template ${whole} names a label the alert does not have`);
      return found;
    }
    if (inner === ' printf "%.2f" $value ') return value.toFixed(2);
    throw new Error(`template ${whole} is not one the generated tests render`);
  });
}

/** Labels of the alert raised by an anomaly of `detector` on `subject` with `severity`. */
export function expectedAlertLabels(detector: DetectorDeclaration, subject: string, severity: string): Record<string, string> {
  const arrow = subject.indexOf(' -> ');
  const split = arrow === -1 ? undefined : { src: subject.slice(0, arrow), dst: subject.slice(arrow + 4) };
  const subjectLabels: Record<string, string> = detector.alert.subject === 'edge' ? (split ?? {}) : { src: split?.src ?? subject };
  return { detector: detector.name, severity, ...detector.alert.labels, subject, ...subjectLabels };
}

/** The subject an anomaly of this detector has in the generated tests. */
function sampleSubject(detector: DetectorDeclaration, index: number): string {
  return detector.alert.subject === 'edge' ? `spiffe://cluster.local/ns/shop/sa/caller-${index} -> service-${index}` : `spiffe://cluster.local/ns/shop/sa/actor-${index}`;
}

/** alerts/tests/detectors.generated.test.yml: each detector alert firing with its labels and annotations, pending before `for:`, gone once resolved, silent for info. */
export function renderDetectorRuleTests(detectors: readonly AnyDetector[]): string {
  const severities = ['low', 'medium', 'high', 'critical'];
  const series = (d: AnyDetector, severity: string, subject: string, values: string, extra = '') =>
    `      - series: ${quoteYaml(`ztwatch_anomaly_firing{detector="${d.name}",severity="${severity}",subject="${subject}"${extra}}`)}\n        values: '${values}'`;
  const firing = detectors.map((d, i) => {
    const severity = severities[i % severities.length] as string;
    const subject = sampleSubject(d, i);
    // Scores with at most two decimals, so no rounding rule can make Go and JavaScript disagree.
    const score = 2.25 + 3 * i;
    const labels = expectedAlertLabels(d, subject, severity);
    return {
      input: series(d, severity, subject, `${score}x10`, ',job="ztwatch-detector",instance="detector-1:8080"'),
      test: [
        '      - eval_time: 1m',
        `        alertname: ${d.alert.name}`,
        '        exp_alerts:',
        '          - exp_labels:',
        ...Object.entries(labels).map(([k, v]) => `              ${k}: ${quoteYaml(v)}`),
        '            exp_annotations:',
        `              summary: ${quoteYaml(renderAlertTemplate(d.alert.summary, labels, score))}`,
        `              description: ${foldYaml(renderAlertTemplate(d.alert.description, labels, score), 16)}`,
        `              runbook_url: ${runbookUrl(d.alert)}`,
      ].join('\n'),
    };
  });
  const quiet = (evalTime: string) => detectors.map((d) => `      - { eval_time: ${evalTime}, alertname: ${d.alert.name}, exp_alerts: [] }`);
  return `# Unit tests of alerts/ztwatch-detectors.rules.yml, generated with it by alerts/generate.ts from the
# detector declarations: \`promtool test rules alerts/tests/detectors.generated.test.yml\`. Each
# detector's anomaly gauge raises its own alert with the series' severity, the declared labels,
# src/dst from the subject and the annotations rendered for that anomaly; the alert waits its
# \`for:\` (every declared \`for:\` is longer than 15s), resolves once the gauge is gone, and info
# anomalies never alert. Hand-written cases are in detectors.test.yml.
rule_files:
  - ../ztwatch-detectors.rules.yml

evaluation_interval: 15s

tests:
  - name: every detector raises its own alert with its labels and annotations
    interval: 15s
    input_series:
${firing.map((f) => f.input).join('\n')}
    alert_rule_test:
${firing.map((f) => f.test).join('\n')}

  - name: no alert before the for duration, and none once the anomaly resolved
    interval: 15s
    input_series:
      # Present from 0s to 2m, then gone (the detector resolved the anomaly); staleness lets a
      # vanished series count for 5 more minutes, so resolution is checked at 8m.
${detectors.map((d, i) => series(d, 'high', sampleSubject(d, i), '2x8')).join('\n')}
    alert_rule_test:
${[...quiet('15s'), ...quiet('8m')].join('\n')}

  - name: info anomalies stay on dashboards and never alert
    interval: 15s
    input_series:
${detectors.map((d, i) => series(d, 'info', sampleSubject(d, i), '5x20')).join('\n')}
    alert_rule_test:
${quiet('5m').join('\n')}
`;
}

/** Escapes a table cell. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

/** README.md block `detectors`: what each detector flags and must not flag. */
export function renderDetectorsTable(detectors: readonly AnyDetector[]): string {
  const rows = detectors.map((d) => `| \`${d.name}\` | ${cell(d.description)} | ${cell(d.mustNotFlag)} |`);
  return ['| detector | flags | must not flag |', '|---|---|---|', ...rows].join('\n');
}

/** docs/alerts.md block `detector-alerts`: one row per detector alert. */
export function renderDetectorAlertsTable(detectors: readonly AnyDetector[]): string {
  const rows = detectors.map((d) => {
    const added = [...Object.entries(d.alert.labels).map(([k, v]) => `\`${k}=${v}\``), '`src`', ...(d.alert.subject === 'edge' ? ['`dst`'] : [])];
    return `| \`${d.alert.name}\` | \`${d.name}\` | ${cell(d.description)} | ${added.join(', ')} | ${d.alert.for} |`;
  });
  return ['| alert | detector | fires when | labels added | for |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** docs/detectors.md block `detector-rollups`: each rollup and who reads it. */
export function renderRollupsTable(detectors: readonly AnyDetector[]): string {
  const rows = (Object.keys(DETECTOR_ROLLUPS) as RollupName[]).map((table) => {
    const readers = detectors.filter((d) => d.rollups.includes(table)).map((d) => d.name);
    if (DETECTOR_ROLLUPS[table].newestEventMsSql !== undefined) readers.push('live watermark');
    return `| \`${table}\` | ${cell(DETECTOR_ROLLUPS[table].row)} | ${readers.join(', ')} |`;
  });
  return ['| table | one row per 10 s bucket and … | read by |', '|---|---|---|', ...rows].join('\n');
}

/** One list item, wrapped, continuation lines indented under its text. */
function listItem(marker: string, text: string): string {
  const pad = ' '.repeat(marker.length + 1);
  return wrapWords(text, WRAP_COLUMNS - pad.length)
    .map((line, i) => (i === 0 ? `${marker} ${line}` : pad + line))
    .join('\n');
}

/** docs/runbooks.md block `detector-runbooks`: one section per detector alert, anchored by its name. */
export function renderRunbooks(detectors: readonly AnyDetector[]): string {
  return detectors
    .map((d) =>
      [
        `### ${d.alert.name}`,
        '',
        wrapWords(`**Meaning.** ${d.runbook.meaning}`, WRAP_COLUMNS).join('\n'),
        '',
        '**Confirm.**',
        ...d.runbook.confirm.map((item) => listItem('-', item)),
        '',
        '**First actions.**',
        ...d.runbook.firstActions.map((item, i) => listItem(`${i + 1}.`, item)),
      ].join('\n'),
    )
    .join('\n\n');
}

/** The content of each generated docs block. */
export function renderDocBlocks(detectors: readonly AnyDetector[]): Record<string, string> {
  return {
    detectors: renderDetectorsTable(detectors),
    'detector-alerts': renderDetectorAlertsTable(detectors),
    'detector-rollups': renderRollupsTable(detectors),
    'detector-runbooks': renderRunbooks(detectors),
  };
}

/** `text` with the block `name` replaced by `content`; throws when the markers are missing. */
export function replaceBlock(text: string, name: string, content: string): string {
  const begin = `<!-- generated:${name} (alerts/generate.ts, from the detector declarations) -->`;
  const end = `<!-- end generated:${name} -->`;
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  if (start === -1 || stop < start) throw new Error(`no block ${begin} … ${end}`);
  return `${text.slice(0, start + begin.length)}\n${content}\n${text.slice(stop)}`;
}

/** Relative path → content of every file derived from `detectors`, reading the docs under `root`. */
export function generateDetectorFiles(root: string = ROOT, detectors: readonly AnyDetector[] = Object.values(DETECTORS)): Map<string, string> {
  const files = new Map<string, string>([
    [RULES_FILE, renderDetectorRules(detectors)],
    [RULE_TESTS_FILE, renderDetectorRuleTests(detectors)],
  ]);
  const blocks = renderDocBlocks(detectors);
  for (const [file, names] of Object.entries(DOC_BLOCKS)) {
    let text = readFileSync(join(root, file), 'utf8');
    for (const name of names) text = replaceBlock(text, name, blocks[name] as string);
    files.set(file, text);
  }
  return files;
}

/** Files under `root` that differ from a fresh generation (or are missing). */
export function findStaleDetectorFiles(root: string = ROOT): string[] {
  const stale: string[] = [];
  for (const [file, content] of generateDetectorFiles(root)) {
    const path = join(root, file);
    if (!existsSync(path)) stale.push(`${file} (missing)`);
    else if (readFileSync(path, 'utf8') !== content) stale.push(`${file} (differs)`);
  }
  return stale.sort();
}

/** Writes every derived file under `root`; returns the ones that changed. */
export function writeDetectorFiles(root: string = ROOT): string[] {
  const changed: string[] = [];
  for (const [file, content] of generateDetectorFiles(root)) {
    const path = join(root, file);
    if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
    writeFileSync(path, content);
    changed.push(file);
  }
  return changed;
}

function main(args: readonly string[]): number {
  const rootIndex = args.indexOf('--root');
  const rootArg = rootIndex === -1 ? undefined : args[rootIndex + 1];
  if (rootIndex !== -1 && rootArg === undefined) {
    console.error('usage: generate.ts [--check] [--root DIR]');
    return 2;
  }
  const root = rootArg === undefined ? ROOT : resolve(rootArg);
  if (args.includes('--check')) {
    const stale = findStaleDetectorFiles(root);
    if (stale.length === 0) {
      console.log(`alerts: the files derived from ${Object.keys(DETECTORS).length} detector declarations are up to date`);
      return 0;
    }
    console.error(`alerts: files derived from the detector declarations are out of date; run \`npm run alerts\` and commit:\n  ${stale.join('\n  ')}`);
    return 1;
  }
  const changed = writeDetectorFiles(root);
  console.log(changed.length === 0 ? 'alerts: nothing to change' : `alerts: wrote ${changed.join(', ')}`);
  return 0;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) process.exitCode = main(process.argv.slice(2));
