// What a source module declares about each format it reads, once: the registry (index.ts), the
// pipeline's skip reasons, the HTTP route's body splitting and the README's formats table
// (checked by test/ingest/parsers/format.test.ts) all come from these declarations.
import type { Parser, Source } from '../../core/event.ts';

/**
 * How a body of this format holds its records: `records` = NDJSON, a JSON array, pretty-printed
 * objects or text lines (ingest/records.ts); `k8s_event_list` = also an `audit.k8s.io` EventList,
 * the Kubernetes audit webhook's body, whose items are the records.
 */
export type FormatEnvelope = 'records' | 'k8s_event_list';

/** One input format. */
export interface FormatDeclaration {
  /** Name in `POST /v1/ingest/{format}`, `--format` and `--follow PATH:FORMAT`. */
  readonly name: string;
  /** The `source` its events carry. */
  readonly source: Source;
  readonly parse: Parser;
  /** One line for `--help`, the README and the OpenAPI document. */
  readonly description: string;
  /**
   * Reasons its parser gives for records that are read correctly but stand for no request (a
   * follow-up line, an early audit stage): counted as dropped, not dead-lettered.
   */
  readonly skipReasons: readonly string[];
  readonly envelope: FormatEnvelope;
  /** How the source is pointed at ztwatch, for the README's formats table (Markdown). */
  readonly howToSend: string;
  /** Where its fields are documented: a path in the repository, optionally with an anchor. */
  readonly docs: string;
}

/** The README's formats table rows, one per declared format. */
export function renderFormatRows(formats: readonly FormatDeclaration[]): string[] {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  return formats.map((f) => `| \`${f.name}\` | ${cell(f.description)} | ${cell(f.howToSend)} | [${f.docs}](${f.docs}) |`);
}
