// Line charts with uPlot: the options the console's charts share (time axis in UTC, colours from
// the theme), nothing drawn by hand.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface LineSpec {
  readonly label: string;
  readonly color: string;
  /** Dashed, for baselines. */
  readonly dash?: boolean;
}

/** Tick spacings the time axis may use, in seconds. */
const TIME_INCREMENTS_SECONDS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Theme colour by CSS variable name (e.g. `--sev-high`). */
export function themeColor(name: string): string {
  return cssVar(name, '#888');
}

/** A time-series line chart in `container`; `data[0]` is Unix seconds, then one array per line. */
export function createLineChart(container: HTMLElement, lines: readonly LineSpec[], data: uPlot.AlignedData, options: { height?: number; yLabel?: string } = {}): uPlot {
  const axisColor = cssVar('--muted', '#888');
  const gridColor = cssVar('--grid', '#8883');
  const axis = (label?: string, incrs?: number[]): uPlot.Axis => ({
    ...(incrs ? { incrs } : {}), stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 }, ...(label ? { label } : {}) });
  const width = Math.max(240, container.clientWidth || 600);
  const chart = new uPlot(
    {
      width,
      height: options.height ?? 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: { x: { time: true } },
      // Whole seconds at least: a few minutes of samples would otherwise be labelled in milliseconds.
      axes: [axis(undefined, TIME_INCREMENTS_SECONDS), axis(options.yLabel)],
      legend: { live: true },
      series: [{ label: 'time (UTC)' }, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, ...(l.dash ? { dash: [6, 4] } : {}), points: { show: false } }))],
    },
    data,
    container,
  );
  return chart;
}

/** Keeps a chart as wide as its container; returns the function that stops it. */
export function followWidth(chart: uPlot, container: HTMLElement): () => void {
  const observer = new ResizeObserver(() => {
    const width = Math.max(240, container.clientWidth);
    if (Math.abs(width - chart.width) > 2) chart.setSize({ width, height: chart.height });
  });
  observer.observe(container);
  return () => observer.disconnect();
}
