// What every page of the console gets, and gives back.
import type { Session } from './api.ts';

export interface ViewContext {
  readonly session: Session;
  /** Path after `#/` split on `/`, e.g. ['incidents', '<id>']. */
  readonly path: readonly string[];
  /** The query part of the hash (`#/access?identity=…`). */
  readonly query: URLSearchParams;
  /** Sets a status line (errors, counts) in the page header. */
  status(text: string, kind?: 'info' | 'error'): void;
}

/** Renders into `root`; returns what stops its timers and frees its resources. */
export type View = (root: HTMLElement, ctx: ViewContext) => (() => void) | void;

/** `#/access?identity=a&service=b` */
export function hashLink(page: string, params: Record<string, string | number | undefined | null> = {}): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, String(v));
  const text = search.toString();
  return `#/${page}${text ? `?${text}` : ''}`;
}

/** An ISO time as the value of a UTC `datetime-local` input (`2025-01-31T12:00`). */
export function toInputTime(iso: string | number): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 16);
}

/** A UTC `datetime-local` value as ISO, or undefined when empty/invalid. */
export function fromInputTime(value: string): string | undefined {
  if (!value) return undefined;
  const ms = Date.parse(`${value.length === 16 ? `${value}:00` : value}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}
