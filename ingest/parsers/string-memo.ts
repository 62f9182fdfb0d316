// A bounded memo for values derived from strings that repeat from line to line (flag texts,
// cluster names, peer identities), so parsers derive each once.

/** Longest key a StringMemo keeps: names and identities are far shorter. */
export const MAX_MEMO_KEY_CHARS = 1024;

/** A bounded string-keyed memo (see createStringMemo). */
export interface StringMemo<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
}

/**
 * A memo for values derived from strings that repeat across lines (cluster names, SPIFFE IDs).
 * A Map hashes every character of each fresh key; here the bucket comes from the length and
 * eight characters spread over the key, and a lookup compares the key with the few entries of
 * its bucket. Names that differ in a few characters only (`reviews`, `ratings`) may share a
 * bucket: they cost one more comparison each, never a recomputation. Holds at most `capacity`
 * entries (rounded up to a power of two); when full it starts over. Keys longer than
 * MAX_MEMO_KEY_CHARS are not kept (get misses, set does nothing), so hostile input cannot fill
 * the memo with megabyte strings.
 */
export function createStringMemo<V>(capacity: number): StringMemo<V> {
  let size = 1;
  while (size < capacity) size <<= 1;
  const mask = size - 1;
  let keys: Array<string[] | undefined> = new Array<string[] | undefined>(size).fill(undefined);
  let values: Array<V[] | undefined> = new Array<V[] | undefined>(size).fill(undefined);
  let entries = 0;
  // Eight characters spread over the key: names that differ only in their middle (service and
  // namespace inside a cluster name or SPIFFE ID) mostly land in different buckets.
  const bucketOf = (key: string): number => {
    const n = key.length;
    if (n === 0) return 0;
    const e = n >> 3;
    let h = n;
    h = (h * 31 + key.charCodeAt(e)) | 0;
    h = (h * 31 + key.charCodeAt(e * 2)) | 0;
    h = (h * 31 + key.charCodeAt(e * 3)) | 0;
    h = (h * 31 + key.charCodeAt(e * 4)) | 0;
    h = (h * 31 + key.charCodeAt(e * 5)) | 0;
    h = (h * 31 + key.charCodeAt(e * 6)) | 0;
    h = (h * 31 + key.charCodeAt(e * 7)) | 0;
    h = (h * 31 + key.charCodeAt(n - 1)) | 0;
    return (h ^ (h >>> 11)) & mask;
  };
  return {
    get(key) {
      const bucket = bucketOf(key);
      const bucketKeys = keys[bucket];
      if (bucketKeys === undefined) return undefined;
      for (let i = 0; i < bucketKeys.length; i++) {
        if (bucketKeys[i] === key) return (values[bucket] as V[])[i];
      }
      return undefined;
    },
    set(key, value) {
      if (key.length > MAX_MEMO_KEY_CHARS) return;
      if (entries >= size) {
        keys = new Array<string[] | undefined>(size).fill(undefined);
        values = new Array<V[] | undefined>(size).fill(undefined);
        entries = 0;
      }
      const bucket = bucketOf(key);
      const bucketKeys = keys[bucket];
      if (bucketKeys === undefined) {
        keys[bucket] = [key];
        values[bucket] = [value];
        entries++;
        return;
      }
      const at = bucketKeys.indexOf(key);
      if (at >= 0) {
        (values[bucket] as V[])[at] = value;
      } else {
        bucketKeys.push(key);
        (values[bucket] as V[]).push(value);
        entries++;
      }
    },
  };
}
