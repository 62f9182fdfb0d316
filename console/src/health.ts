// Pipeline health page: events per second through the collector and the sink, dead letters by
// reason, drops, lag (consumer lag, bus in flight, newest stored event, detector watermark) and
// readiness, from this process's /metrics and /readyz, polled.
import { apiFetch } from './api.ts';
import { createLineChart, followWidth, themeColor } from './chart.ts';
import { field, formatCount, formatTime, h, replaceChildren } from './dom.ts';
import { groupBy, parseMetricsText, sumOf, valueOf, type Sample } from './metrics-text.ts';
import type { View } from './view.ts';
import type uPlot from 'uplot';

const POLL_MS = 2000;
/** Points kept on the rate chart (10 minutes at POLL_MS). */
const MAX_POINTS = 300;
const M = {
  received: 'ztwatch_stage_received_events_total',
  sent: 'ztwatch_stage_sent_events_total',
  dropped: 'ztwatch_stage_dropped_events_total',
  deadLetters: 'ztwatch_deadletter_events_total',
  lag: 'ztwatch_consumer_lag_messages',
  inFlight: 'ztwatch_bus_in_flight_messages',
  lastEvent: 'ztwatch_sink_last_event_timestamp_seconds',
  watermark: 'ztwatch_detector_watermark_timestamp_seconds',
  detectorLastRun: 'ztwatch_detector_last_success_timestamp_seconds',
} as const;

function secondsBehind(unixSeconds: number | undefined, nowMs: number): string {
  if (!unixSeconds) return '–';
  const s = Math.max(0, nowMs / 1000 - unixSeconds);
  return s < 120 ? `${s.toFixed(1)} s behind` : s < 7200 ? `${(s / 60).toFixed(1)} min behind` : `${(s / 3600).toFixed(1)} h behind`;
}

function table(title: string, testid: string, rows: ReadonlyArray<[string, number]>, empty: string): HTMLElement {
  return h(
    'section',
    {},
    h('h3', {}, title),
    rows.length === 0
      ? h('p', { class: 'muted', 'data-testid': testid }, empty)
      : h('table', { class: 'grid compact', 'data-testid': testid }, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('td', { class: 'mono' }, k), h('td', { class: 'num' }, formatCount(v)))))),
  );
}

export const renderHealth: View = (root, ctx) => {
  const cards = h('div', { class: 'cards', 'data-testid': 'health-cards' });
  const chartBox = h('div', { class: 'chart', 'data-testid': 'health-chart' });
  const tables = h('div', { class: 'columns' });
  root.append(h('h2', {}, 'Pipeline health'), h('p', { class: 'muted' }, 'From this process’s /metrics, every 2 s. In a distributed install each role reports its own stages.'), cards, h('h3', {}, 'Events per second'), chartBox, tables);

  const data: [number[], number[], number[]] = [[], [], []];
  let chart: uPlot | undefined;
  let stopWidth: (() => void) | undefined;
  let previous: { atMs: number; received: number; sent: number } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const update = (samples: Sample[], ready: { status: string; checks: Record<string, boolean> } | null, nowMs: number) => {
    const received = sumOf(samples, M.received, { stage: 'collector' });
    const sent = sumOf(samples, M.sent, { stage: 'sink' });
    if (previous) {
      const dt = (nowMs - previous.atMs) / 1000;
      data[0].push(nowMs / 1000);
      data[1].push(Math.max(0, (received - previous.received) / dt));
      data[2].push(Math.max(0, (sent - previous.sent) / dt));
      if (data[0].length > MAX_POINTS) for (const d of data) d.shift();
    }
    previous = { atMs: nowMs, received, sent };
    const lastRate = (i: 1 | 2) => data[i][data[i].length - 1];
    const deadLetters = [...groupBy(samples, M.deadLetters, 'reason')].sort((a, b) => b[1] - a[1]);
    const drops = samples.filter((s) => s.name === M.dropped).map((s) => [`${s.labels.stage ?? ''}: ${s.labels.reason ?? ''}`, s.value] as [string, number]);
    const detectorRuns = samples.filter((s) => s.name === M.detectorLastRun);
    replaceChildren(
      cards,
      field('Ingest', lastRate(1) === undefined ? 'measuring…' : `${formatCount(lastRate(1) as number)} events/s`),
      field('Stored', lastRate(2) === undefined ? 'measuring…' : `${formatCount(lastRate(2) as number)} events/s`),
      field('Dead letters', formatCount(sumOf(samples, M.deadLetters))),
      field('Consumer lag', `${formatCount(sumOf(samples, M.lag))} messages`),
      field('Bus in flight', formatCount(valueOf(samples, M.inFlight) ?? 0)),
      field('Newest stored event', secondsBehind(valueOf(samples, M.lastEvent), nowMs)),
      field('Detector watermark', secondsBehind(valueOf(samples, M.watermark), nowMs)),
      field('Ready', ready ? `${ready.status} (${Object.entries(ready.checks).map(([k, v]) => `${k} ${v ? 'ok' : 'failing'}`).join(', ')})` : '–'),
    );
    cards.dataset.ready = 'true';
    replaceChildren(
      tables,
      table('Dead letters by reason', 'dead-letters', deadLetters, 'No dead letters.'),
      table('Dropped by stage and reason', 'drops', drops, 'Nothing dropped.'),
      h(
        'section',
        {},
        h('h3', {}, 'Detectors: last successful run'),
        detectorRuns.length === 0
          ? h('p', { class: 'muted' }, 'No detector in this process.')
          : h('table', { class: 'grid compact' }, h('tbody', {}, ...detectorRuns.map((s) => h('tr', {}, h('td', { class: 'mono' }, s.labels.detector ?? ''), h('td', {}, formatTime(s.value * 1000)))))),
      ),
    );
    if (data[0].length >= 2) {
      if (!chart) {
        chart = createLineChart(chartBox, [
          { label: 'received (collector)', color: themeColor('--accent') },
          { label: 'stored (sink)', color: themeColor('--ok') },
        ], data, { height: 200, yLabel: 'events/s' });
        stopWidth = followWidth(chart, chartBox);
      } else chart.setData(data);
    }
  };

  const poll = async () => {
    const [metricsRes, readyRes] = await Promise.all([apiFetch('/metrics'), fetch('/readyz', { cache: 'no-store' })]);
    const text = await metricsRes.text();
    const ready = (await readyRes.json().catch(() => null)) as { status: string; checks: Record<string, boolean> } | null;
    if (!stopped) update(parseMetricsText(text), ready, Date.now());
  };
  const loop = () => {
    poll()
      .then(() => ctx.status(''))
      .catch((err: unknown) => ctx.status(`health: ${(err as Error).message}`, 'error'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, POLL_MS);
      });
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
    stopWidth?.();
    chart?.destroy();
  };
};
