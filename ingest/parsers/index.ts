// The parser registry: every input format ztwatch reads, by the name used in
// `POST /v1/ingest/{format}` and `--format`, and format detection for mixed files.
import type { Parser, Source } from '../../core/event.ts';

export interface ParserEntry {
  /** The `source` the events carry. */
  readonly source: Source;
  readonly parse: Parser;
  /** One line for `--help`, the README and the OpenAPI document. */
  readonly description: string;
}

/** Every format, by name. */
export const PARSERS: Readonly<Record<string, ParserEntry>> = {};

/** Guesses the format of one record; undefined when nothing matches. Cheap: looks at a prefix. */
export function detectFormat(_line: string): string | undefined {
  return undefined;
}
