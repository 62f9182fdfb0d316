// Plain-text tables for posture reports (the CLI prints them; --json prints the values instead).

/** Renders rows under a header, columns padded to their widest cell (capped at `maxWidth`). */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>, maxWidth = 60): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = header.map((h, i) => Math.min(maxWidth, Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length))));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => {
        const w = widths[i] ?? c.length;
        const text = c.length > w ? `${c.slice(0, w - 1)}…` : c;
        return i === r.length - 1 ? text : text.padEnd(w);
      })
      .join('  ');
  return [line(header), ...cells.map(line)].join('\n') + '\n';
}

/** A CSV field, quoted when needed (RFC 4180). */
export function toCsvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Percent with one decimal, or `-` for null. */
export function formatShare(share: number | null): string {
  return share === null ? '-' : `${(share * 100).toFixed(1)}%`;
}
