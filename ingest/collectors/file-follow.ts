// Follows a log file like `tail -F`, but never loses its place: the position (inode + byte offset
// of the last delivered line) is saved atomically after every batch the consumer accepted, so a
// restart resumes exactly there. Rotation by rename (logrotate's default, kubelet's) and by
// copy + truncate (`copytruncate`) are both followed; a partial last line waits for its end.
// A line longer than `maxLineBytes` is never passed to a parser: it is handed over as a
// `record_too_long` rejection (cut), and the rest of it is skipped up to its newline.
import { open, readdir, rename, stat, readFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { createError, hasCode } from '../../core/errors.ts';
import { REJECTED_RAW_CHARS, type RejectedRecord } from '../records.ts';

/** Reason given to a line longer than `maxLineBytes` (the same as a request body's). */
export const RECORD_TOO_LONG = 'record_too_long';

export interface FileFollowerOptions {
  /** The file to follow; it may not exist yet. */
  readonly path: string;
  /** Where the position is kept between runs (JSON, written atomically). */
  readonly statePath: string;
  /**
   * Receives complete records in file order, and lines refused as too long (for the dead-letter
   * path); the position advances only once it resolves.
   */
  readonly onRecords: (records: string[], rejected: RejectedRecord[]) => Promise<void>;
  /** Time between two looks at the file, in milliseconds. @default 250 */
  readonly pollMs?: number;
  /** Read a file seen for the first time (no saved position) from its start instead of its end. @default false */
  readonly fromStart?: boolean;
  /** Longest line passed on, in bytes (config `ingest.maxLineBytes`); a longer one is rejected. */
  readonly maxLineBytes: number;
  /** Most records per `onRecords` call. @default 5000 */
  readonly maxBatchRecords?: number;
  /** Strip CRI (`<time> stdout F …`) and docker json-log wrappers from each line. @default 'auto' */
  readonly containerPrefix?: 'auto' | 'none';
  /** Told about each failed poll (unreadable file, rejected batch, unsaved position); the next poll retries. */
  readonly onError?: (error: Error) => void;
}

/** Where the follower stands. */
export interface FollowPosition {
  readonly inode: string;
  readonly offset: number;
}

export interface FileFollower {
  /**
   * Opens the file (or waits for it) at the saved position, delivers what is there, and polls
   * every `pollMs`. Rejects when the file or the state path cannot be used at all.
   */
  start(): Promise<void>;
  /** Reads everything available now and resolves once it is delivered (also used by the timer). */
  poll(): Promise<void>;
  position(): FollowPosition | undefined;
  /** Stops polling, waits for a delivery in flight, and releases the file. */
  close(): Promise<void>;
}

/** A line with its container-runtime wrapper removed. */
export interface ContainerLine {
  readonly message: string;
  /** True for a fragment that the next line continues (CRI `P`, docker entry without `\n`). */
  readonly partial: boolean;
  readonly format: 'cri' | 'docker' | 'none';
}

const CRI_LINE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}) (?:stdout|stderr) ([PF])(?: |$)/;
const DOCKER_KEYS = new Set(['log', 'stream', 'time', 'attrs']);

/**
 * Removes what the container runtime wrapped around a log line:
 * CRI `2024-01-01T00:00:00.123456789Z stdout F <msg>` (`P` marks a fragment the next line
 * continues) and docker json-log `{"log":"<msg>\n","stream":"stdout","time":"…"}`.
 */
export function stripContainerPrefix(line: string): ContainerLine {
  const cri = CRI_LINE.exec(line);
  if (cri) return { message: line.slice(cri[0].length), partial: cri[1] === 'P', format: 'cri' };
  if (line.startsWith('{"log":')) {
    try {
      const value: unknown = JSON.parse(line);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const entry = value as Record<string, unknown>;
        if (typeof entry.log === 'string' && typeof entry.stream === 'string' && Object.keys(entry).every((k) => DOCKER_KEYS.has(k))) {
          // Docker splits lines longer than 16 KiB into entries without the trailing newline.
          const complete = entry.log.endsWith('\n');
          const message = complete ? entry.log.slice(0, entry.log.endsWith('\r\n') ? -2 : -1) : entry.log;
          return { message, partial: !complete, format: 'docker' };
        }
      }
    } catch {
      // Not docker's wrapper after all: the line is the message.
    }
  }
  return { message: line, partial: false, format: 'none' };
}

interface SavedState {
  readonly version: 1;
  readonly path: string;
  readonly dev: string;
  readonly inode: string;
  readonly offset: number;
  /** Hex of the bytes just before `offset`: tells a file rewritten in place from the one we read. */
  readonly tail: string;
}

interface OpenFile {
  readonly fh: FileHandle;
  readonly dev: string;
  readonly inode: string;
  /** Byte offset just after the last delivered record. */
  offset: number;
  /** Hex of the bytes just before `offset`, as they were read. */
  tail: string;
  /** True while the rest of a line already rejected as too long is being skipped. */
  skipping?: boolean;
}

const TAIL_BYTES = 64;
const CHUNK_BYTES = 256 * 1024;
/** Bytes read per delivery at most, so one call never holds a huge backlog in memory. */
const BATCH_BYTES = 8 * 1024 * 1024;
/** Polls the old file is still read after a rename before the follower moves to the new one. */
const MAX_ROTATION_GRACE_POLLS = 20;

/** Creates a follower; nothing is read until `start()` or `poll()`. */
export function createFileFollower(options: FileFollowerOptions): FileFollower {
  const pollMs = options.pollMs ?? 250;
  const maxLineBytes = Math.max(1, options.maxLineBytes);
  const maxBatchRecords = options.maxBatchRecords ?? 5000;
  const stripPrefix = (options.containerPrefix ?? 'auto') === 'auto';
  let current: OpenFile | undefined;
  let initialized = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let graceForOld = 0;

  async function statPath(): Promise<BigIntStats | undefined> {
    try {
      return await stat(options.path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw createError('INGEST_FILE_UNREADABLE', options.path, { cause: err });
    }
  }

  /** Opens the followed path at offset 0; undefined when it does not exist. */
  async function openPath(): Promise<{ file: OpenFile; size: bigint } | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(options.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw createError('INGEST_FILE_UNREADABLE', options.path, { cause: err });
    }
    const st = await fh.stat({ bigint: true });
    return { file: { fh, dev: String(st.dev), inode: String(st.ino), offset: 0, tail: '' }, size: st.size };
  }

  /** Moves `file` to `offset` when the bytes before it are still those once read (`tail`). */
  async function resumeAt(file: OpenFile, size: bigint, offset: number, tail: string): Promise<void> {
    if (size >= BigInt(offset) && (await readTail(file, offset)) === tail) {
      file.offset = offset;
      file.tail = tail;
    }
  }

  async function readTail(file: OpenFile, offset: number): Promise<string> {
    const from = Math.max(0, offset - TAIL_BYTES);
    const buf = Buffer.alloc(offset - from);
    const { bytesRead } = await file.fh.read(buf, 0, buf.length, from);
    return buf.subarray(0, bytesRead).toString('hex');
  }

  async function loadState(): Promise<SavedState | undefined> {
    let text: string;
    try {
      text = await readFile(options.statePath, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const value = JSON.parse(text) as Partial<SavedState>;
      if (value.version === 1 && typeof value.inode === 'string' && typeof value.dev === 'string' && Number.isSafeInteger(value.offset) && typeof value.tail === 'string') {
        return value as SavedState;
      }
    } catch {
      // A damaged state file is treated as none: better a re-read than a silent skip.
    }
    return undefined;
  }

  async function saveState(file: OpenFile): Promise<void> {
    const state: SavedState = { version: 1, path: options.path, dev: file.dev, inode: file.inode, offset: file.offset, tail: file.tail };
    const tmp = `${options.statePath}.${process.pid}.tmp`;
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify(state));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, options.statePath);
    } catch (err) {
      throw createError('INGEST_STATE_UNWRITABLE', options.statePath, { cause: err });
    }
  }

  /** Resumes at the saved position; finishes a file rotated away while we were not running. */
  async function initialize(): Promise<void> {
    const saved = await loadState();
    const st = await statPath();
    const sameFile = saved !== undefined && st !== undefined && String(st.ino) === saved.inode && String(st.dev) === saved.dev;
    // Renamed away while we were not running: finish it before the file now at the path.
    if (saved && !sameFile) await drainRotatedAway(saved);
    const opened = await openPath();
    if (opened) {
      const { file, size } = opened;
      if (sameFile) await resumeAt(file, size, saved.offset, saved.tail);
      else if (!saved && !options.fromStart) {
        file.offset = Number(size);
        file.tail = await readTail(file, file.offset);
      }
      current = file;
      await saveState(file);
    }
    initialized = true;
  }

  async function drainRotatedAway(saved: SavedState): Promise<void> {
    const dir = dirname(options.path);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names.slice(0, 10_000)) {
      const candidate = join(dir, name);
      if (candidate === options.path) continue;
      const st = await stat(candidate, { bigint: true }).catch(() => undefined);
      if (!st || String(st.ino) !== saved.inode || String(st.dev) !== saved.dev || !st.isFile()) continue;
      const fh = await open(candidate, 'r');
      const file: OpenFile = { fh, dev: saved.dev, inode: saved.inode, offset: 0, tail: '' };
      try {
        await resumeAt(file, st.size, saved.offset, saved.tail);
        while (await deliver(file, true)) {
          // keep going until the rotated file is delivered whole
        }
      } finally {
        await fh.close();
      }
      return;
    }
  }

  /**
   * Reads from `file.offset`, delivers up to one batch and advances. True when more is waiting.
   * `final` also delivers an unterminated last line: the file will never be written again.
   */
  async function deliver(file: OpenFile, final: boolean): Promise<boolean> {
    const records: string[] = [];
    const rejected: RejectedRecord[] = [];
    const fragments: string[] = [];
    let fragmentBytes = 0;
    let skipping = file.skipping === true;
    let commit = file.offset;
    let pos = file.offset;
    let carry: Buffer[] = [];
    let carryBytes = 0;
    let full = false;
    const chunk = Buffer.alloc(CHUNK_BYTES);

    const reject = (bytes: Buffer): void => {
      fragments.length = 0;
      fragmentBytes = 0;
      rejected.push({ raw: bytes.subarray(0, REJECTED_RAW_CHARS).toString('utf8'), reason: RECORD_TOO_LONG });
    };

    const takeLine = (bytes: Buffer, end: number): void => {
      if (skipping) {
        // The end of a line already rejected as too long.
        skipping = false;
        commit = end;
        return;
      }
      if (bytes.length + fragmentBytes > maxLineBytes) {
        reject(bytes);
        commit = end;
        return;
      }
      let text = bytes.toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      const line = stripPrefix ? stripContainerPrefix(text) : { message: text, partial: false };
      if (line.partial) {
        // The position stays before the first fragment until the record is complete.
        fragments.push(line.message);
        fragmentBytes += bytes.length;
        return;
      }
      const record = fragments.length > 0 ? fragments.join('') + line.message : line.message;
      fragments.length = 0;
      fragmentBytes = 0;
      if (record.trim() !== '') records.push(record);
      commit = end;
    };

    while (!full) {
      const { bytesRead } = await file.fh.read(chunk, 0, CHUNK_BYTES, pos);
      if (bytesRead === 0) break;
      let segment = 0;
      for (let nl = chunk.indexOf(10, 0); nl >= 0 && nl < bytesRead; nl = chunk.indexOf(10, nl + 1)) {
        const piece = chunk.subarray(segment, nl);
        takeLine(carryBytes > 0 ? Buffer.concat([...carry, piece]) : Buffer.from(piece), pos + nl + 1);
        carry = [];
        carryBytes = 0;
        segment = nl + 1;
        if (records.length + rejected.length >= maxBatchRecords) {
          full = true;
          pos += segment;
          break;
        }
      }
      if (full) break;
      if (segment < bytesRead) {
        if (skipping) {
          // More of a line already rejected as too long: dropped as it is read.
          commit = pos + bytesRead;
        } else {
          carry.push(Buffer.from(chunk.subarray(segment, bytesRead)));
          carryBytes += bytesRead - segment;
          if (carryBytes + fragmentBytes > maxLineBytes) {
            // Rejected before its end arrives, so memory stays bounded; the rest is skipped.
            reject(Buffer.concat(carry));
            carry = [];
            carryBytes = 0;
            skipping = true;
            commit = pos + bytesRead;
          }
        }
      }
      pos += bytesRead;
      if (pos - file.offset >= BATCH_BYTES) full = true;
    }
    if (final && !full) {
      if (carryBytes > 0) takeLine(Buffer.concat(carry), pos);
      if (fragments.length > 0) {
        records.push(fragments.join(''));
        fragments.length = 0;
        commit = pos;
      }
    }
    if (records.length > 0 || rejected.length > 0) await options.onRecords(records, rejected);
    file.skipping = skipping && !final;
    if (commit !== file.offset) {
      file.offset = commit;
      file.tail = await readTail(file, commit);
      // Saved for a rotated file too: a restart then finishes it from here (see drainRotatedAway).
      await saveState(file);
    }
    return full;
  }

  async function pollOnce(): Promise<void> {
    if (!initialized) await initialize();
    if (!current) {
      // The file did not exist: it is new when it appears, so it is read from its start.
      const opened = await openPath();
      if (!opened) return;
      current = opened.file;
      await saveState(current);
    }
    const file: OpenFile = current;
    const size = (await file.fh.stat({ bigint: true })).size;
    if (size < BigInt(file.offset) || (file.offset > 0 && (await readTail(file, file.offset)) !== file.tail)) {
      // Truncated in place (copytruncate), possibly already written again: start over.
      file.offset = 0;
      file.tail = '';
      file.skipping = false;
      await saveState(file);
    }
    const before = file.offset;
    while (await deliver(file, false)) {
      // deliver batch after batch until the backlog is read
    }
    const st = await statPath();
    const rotated = st !== undefined && (String(st.ino) !== file.inode || String(st.dev) !== file.dev);
    const quiet = file.offset === before;
    if (!rotated) {
      graceForOld = 0;
      return;
    }
    // Renamed away: the writer may still finish a line or two in the old file before reopening.
    if (!quiet && graceForOld++ < MAX_ROTATION_GRACE_POLLS) return;
    while (await deliver(file, true)) {
      // the old file's last lines, including one left unterminated
    }
    graceForOld = 0;
    current = undefined;
    await file.fh.close();
    const opened = await openPath();
    if (opened) {
      current = opened.file;
      await saveState(current);
      while (await deliver(current, false)) {
        // the new file's first lines
      }
    }
  }

  function poll(): Promise<void> {
    const next = running.then(() => (closed ? undefined : pollOnce()));
    running = next.catch(() => undefined);
    return next;
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      poll()
        .catch((err: unknown) => options.onError?.(err instanceof Error ? err : new Error(String(err))))
        .finally(schedule);
    }, pollMs);
    timer.unref();
  }

  return {
    async start() {
      try {
        await poll();
      } catch (err) {
        // A file or state path that cannot be used is a setup error; a refused batch is retried.
        if (hasCode(err, 'ZTW_INGEST_FILE_UNREADABLE') || hasCode(err, 'ZTW_INGEST_STATE_UNWRITABLE')) throw err;
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
      }
      schedule();
    },
    poll,
    position() {
      return current ? { inode: current.inode, offset: current.offset } : undefined;
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
      const file = current;
      current = undefined;
      await file?.fh.close();
    },
  };
}
