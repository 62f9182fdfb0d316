// logfmt-style `key=value key="quoted value"` fields (ztunnel, Envoy custom text formats), scanned
// in one pass without regular expressions.

/**
 * Calls `onField(key, value)` for each `key=value` pair of `text` from `from` on. Values may be
 * double-quoted with backslash escapes. Words without `=` are skipped. Linear in the input.
 */
export function scanLogfmt(text: string, from: number, onField: (key: string, value: string) => void): void {
  const len = text.length;
  let i = from;
  while (i < len) {
    while (i < len && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    const keyStart = i;
    while (i < len) {
      const c = text.charCodeAt(i);
      if (c === 61 /* = */ || c === 32 || c === 9) break;
      i++;
    }
    if (i >= len || text.charCodeAt(i) !== 61) {
      // A bare word: skip it (and a quoted run it may start, so its spaces don't split it).
      if (i < len && text.charCodeAt(keyStart) === 34) i = skipQuoted(text, keyStart);
      continue;
    }
    const key = text.slice(keyStart, i);
    i++;
    let value: string;
    if (i < len && text.charCodeAt(i) === 34 /* " */) {
      const end = skipQuoted(text, i);
      value = unescapeQuoted(text, i + 1, end - 1 > i ? end - 1 : i + 1);
      i = end;
    } else {
      const start = i;
      while (i < len && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++;
      value = text.slice(start, i);
    }
    if (key !== '') onField(key, value);
  }
}

/** Index just past the closing quote of the quoted run starting at `open` (or the end of text). */
function skipQuoted(text: string, open: number): number {
  let i = open + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */) i += 2;
    else if (c === 34) return i + 1;
    else i++;
  }
  return text.length;
}

function unescapeQuoted(text: string, start: number, end: number): string {
  const body = text.slice(start, end);
  if (body.indexOf('\\') < 0) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '\\' && i + 1 < body.length) {
      const n = body[++i] as string;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
    } else out += c;
  }
  return out;
}
