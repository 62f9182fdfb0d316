import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileFollower, stripContainerPrefix, type FileFollower, type FileFollowerOptions } from '../../../ingest/collectors/file-follow.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
let followers: FileFollower[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ztwatch-follow-'));
  followers = [];
});

afterEach(async () => {
  for (const f of followers) await f.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A follower driven by explicit polls (a long pollMs keeps its own timer out of the way). */
function follow(overrides: Partial<FileFollowerOptions> = {}): { follower: FileFollower; got: string[]; tooLong: string[]; path: string; statePath: string } {
  const got: string[] = [];
  const tooLong: string[] = [];
  const path = overrides.path ?? join(dir, 'app.log');
  const statePath = overrides.statePath ?? join(dir, 'app.state.json');
  const follower = createFileFollower({
    path,
    statePath,
    pollMs: 60_000,
    fromStart: true,
    maxLineBytes: 1024 * 1024,
    onRecords: async (records, rejected) => {
      got.push(...records);
      for (const r of rejected) tooLong.push(`${r.reason}:${r.raw.length}`);
    },
    ...overrides,
  });
  followers.push(follower);
  return { follower, got, tooLong, path, statePath };
}

const lines = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
const text = (items: string[]): string => items.map((l) => `${l}\n`).join('');
const savedOffset = (statePath: string): number => (JSON.parse(readFileSync(statePath, 'utf8')) as { offset: number }).offset;

describe('createFileFollower', () => {
  it('reads appended lines and waits for the end of a partial one', async () => {
    const { follower, got, path } = follow();
    writeFileSync(path, text(lines('a', 1, 3)));
    await follower.poll();
    expect(got).toEqual(['a1', 'a2', 'a3']);
    appendFileSync(path, 'a4\na5-first-half');
    await follower.poll();
    expect(got).toEqual(['a1', 'a2', 'a3', 'a4']);
    appendFileSync(path, '-second-half\r\n\n  \na6\n');
    await follower.poll();
    await follower.poll();
    // CRLF is trimmed, blank lines are not records.
    expect(got).toEqual(['a1', 'a2', 'a3', 'a4', 'a5-first-half-second-half', 'a6']);
  });

  it('starts at the end of a file it has never seen unless fromStart', async () => {
    const path = join(dir, 'app.log');
    writeFileSync(path, text(lines('old', 1, 3)));
    const { follower, got } = follow({ fromStart: false });
    await follower.poll();
    expect(got).toEqual([]);
    appendFileSync(path, text(['new1']));
    await follower.poll();
    expect(got).toEqual(['new1']);
  });

  it('follows a rename rotation: the old file is finished, then the new one read from its start', async () => {
    const { follower, got, path } = follow();
    writeFileSync(path, text(lines('a', 1, 5)));
    await follower.poll();
    appendFileSync(path, text(['a6']));
    renameSync(path, `${path}.1`);
    // Rotation happened but the writer has not reopened yet: it goes on writing the renamed file.
    appendFileSync(`${path}.1`, text(['a7']));
    await follower.poll();
    writeFileSync(path, text(['b1']));
    appendFileSync(`${path}.1`, text(['a8']));
    await follower.poll();
    appendFileSync(`${path}.1`, 'a9-never-terminated');
    await follower.poll();
    await follower.poll();
    appendFileSync(path, text(['b2']));
    await follower.poll();
    expect(got).toEqual([...lines('a', 1, 8), 'a9-never-terminated', 'b1', 'b2']);
  });

  it('follows copytruncate, whether the file is shorter or already longer again', async () => {
    const { follower, got, path, statePath } = follow();
    writeFileSync(path, text(lines('c', 1, 3)));
    await follower.poll();
    copyFileSync(path, `${path}.1`);
    truncateSync(path, 0);
    appendFileSync(path, text(['d1']));
    await follower.poll();
    expect(got).toEqual(['c1', 'c2', 'c3', 'd1']);
    // Truncated and written past the old offset before the next look: the content tells.
    copyFileSync(path, `${path}.2`);
    truncateSync(path, 0);
    appendFileSync(path, text(['e1-a-much-longer-line-than-before', 'e2']));
    await follower.poll();
    expect(got).toEqual(['c1', 'c2', 'c3', 'd1', 'e1-a-much-longer-line-than-before', 'e2']);
    expect(savedOffset(statePath)).toBe(readFileSync(path).length);
  });

  it('resumes after a restart exactly where it stopped, with no line lost or repeated', async () => {
    const first = follow();
    writeFileSync(first.path, text(lines('r', 1, 3)) + 'r4-partial');
    await first.follower.poll();
    await first.follower.close();
    expect(first.got).toEqual(['r1', 'r2', 'r3']);
    appendFileSync(first.path, '\n' + text(lines('r', 5, 6)));
    const second = follow();
    await second.follower.poll();
    expect(second.got).toEqual(['r4-partial', 'r5', 'r6']);
    await second.follower.close();

    // Rotated while nothing was running: the renamed file is finished first, found by its inode.
    appendFileSync(first.path, text(['r7']));
    renameSync(first.path, `${first.path}.1`);
    writeFileSync(first.path, text(['s1']));
    const third = follow({ fromStart: false });
    await third.follower.poll();
    expect(third.got).toEqual(['r7', 's1']);
  });

  it('saves the position only after onRecords resolved, and redelivers a rejected batch', async () => {
    const path = join(dir, 'app.log');
    const statePath = join(dir, 'app.state.json');
    writeFileSync(path, text(lines('x', 1, 2)));
    const deliveries: string[][] = [];
    let release: () => void = () => undefined;
    let holding: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (holding = resolve));
    let mode: 'reject' | 'hold' | 'accept' = 'reject';
    const { follower } = follow({
      path,
      statePath,
      onRecords: async (records) => {
        deliveries.push(records);
        if (mode === 'reject') throw new Error('bus down');
        if (mode === 'hold') {
          const done = new Promise<void>((resolve) => (release = resolve));
          holding();
          await done;
        }
      },
    });
    await expect(follower.poll()).rejects.toThrow('bus down');
    expect(savedOffset(statePath)).toBe(0);
    mode = 'hold';
    const pending = follower.poll();
    await held;
    expect(deliveries).toHaveLength(2);
    expect(savedOffset(statePath)).toBe(0);
    release();
    await pending;
    expect(savedOffset(statePath)).toBe(6);
    mode = 'accept';
    await follower.poll();
    expect(deliveries).toEqual([
      ['x1', 'x2'],
      ['x1', 'x2'],
    ]);
  });

  it('joins CRI partial lines and unwraps docker json-log, also across polls', async () => {
    const { follower, got, path } = follow();
    writeFileSync(
      path,
      [
        '2024-01-01T00:00:00.123456789Z stdout F {"status":200}',
        '2024-01-01T00:00:01.000000000Z stderr P part one, ',
        '2024-01-01T00:00:01.000000001Z stderr P part two, ',
      ].join('\n') + '\n',
    );
    await follower.poll();
    expect(got).toEqual(['{"status":200}']);
    appendFileSync(path, '2024-01-01T00:00:01.000000002Z stderr F end\n');
    appendFileSync(path, JSON.stringify({ log: 'docker line\n', stream: 'stdout', time: '2024-01-01T00:00:02Z' }) + '\n');
    await follower.poll();
    expect(got).toEqual(['{"status":200}', 'part one, part two, end', 'docker line']);
  });

  it('reads a file that appears after start from its beginning', async () => {
    const { follower, got, path } = follow({ fromStart: false });
    await follower.poll();
    expect(follower.position()).toBeUndefined();
    writeFileSync(path, text(['late1', 'late2']));
    await follower.poll();
    expect(got).toEqual(['late1', 'late2']);
    expect(follower.position()?.offset).toBe(12);
  });

  it('delivers in batches of at most maxBatchRecords, in order', async () => {
    const sizes: number[] = [];
    const got: string[] = [];
    const { follower, path } = follow({
      maxBatchRecords: 100,
      onRecords: async (records) => {
        sizes.push(records.length);
        got.push(...records);
      },
    });
    writeFileSync(path, text(lines('n', 1, 250)));
    await follower.poll();
    expect(sizes).toEqual([100, 100, 50]);
    expect(got).toEqual(lines('n', 1, 250));
  });

  it('rejects a line longer than maxLineBytes as record_too_long and passes its neighbours on', async () => {
    const { follower, got, tooLong, path } = follow({ maxLineBytes: 64 });
    writeFileSync(path, text(['before', 'x'.repeat(64), 'y'.repeat(65), 'after']));
    await follower.poll();
    expect(got).toEqual(['before', 'x'.repeat(64), 'after']);
    expect(tooLong).toEqual(['record_too_long:65']);
  });

  it('rejects a too-long line before its end is written, skips the rest of it, and resumes after it', async () => {
    const { follower, got, tooLong, path, statePath } = follow({ maxLineBytes: 64 });
    writeFileSync(path, text(['l1']) + 'z'.repeat(50));
    await follower.poll();
    expect(got).toEqual(['l1']);
    appendFileSync(path, 'z'.repeat(50));
    await follower.poll();
    expect(tooLong).toEqual(['record_too_long:100']);
    // The position moved past what was read, so a restart does not hold the line in memory either.
    expect(savedOffset(statePath)).toBe(3 + 100);
    appendFileSync(path, `${'z'.repeat(500)}\nl2\n`);
    await follower.poll();
    expect(got).toEqual(['l1', 'l2']);
    expect(tooLong).toEqual(['record_too_long:100']);
  });

  it('polls on its own after start() and stops after close()', async () => {
    const got: string[] = [];
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const follower = createFileFollower({ path, statePath: join(dir, 's.json'), pollMs: 20, maxLineBytes: 4096, onRecords: async (r) => void got.push(...r) });
    followers.push(follower);
    await follower.start();
    appendFileSync(path, text(['t1', 't2']));
    await waitFor(() => got.length >= 2, { what: 'the timer to deliver t1 and t2' });
    await follower.close();
    appendFileSync(path, text(['t3']));
    // A poll after close() reads nothing: close() waited for the poll in flight and cleared the timer.
    await follower.poll();
    expect(got).toEqual(['t1', 't2']);
    expect(follower.position()).toBeUndefined();
  });
});

describe('createFileFollower start()', () => {
  it('keeps running when the first batch is refused, and fails fast on an unusable state path', async () => {
    const path = join(dir, 'app.log');
    writeFileSync(path, text(['z1']));
    const errors: string[] = [];
    let refuse = true;
    const got: string[] = [];
    const follower = createFileFollower({
      path,
      statePath: join(dir, 's.json'),
      pollMs: 20,
      fromStart: true,
      maxLineBytes: 4096,
      onRecords: async (records) => {
        if (refuse) throw new Error('bus saturated');
        got.push(...records);
      },
      onError: (err) => errors.push(err.message),
    });
    followers.push(follower);
    await follower.start();
    expect(errors).toEqual(['bus saturated']);
    refuse = false;
    await waitFor(() => got.length >= 1, { what: 'the retried batch' });
    expect(got).toEqual(['z1']);

    const broken = createFileFollower({ path, statePath: join(dir, 'missing-dir', 's.json'), maxLineBytes: 4096, onRecords: async () => undefined });
    followers.push(broken);
    await expect(broken.start()).rejects.toMatchObject({ code: 'ZTW_INGEST_STATE_UNWRITABLE' });
  });
});

describe('stripContainerPrefix', () => {
  it.each([
    ['2024-01-01T00:00:00.123456789Z stdout F hello world', { message: 'hello world', partial: false, format: 'cri' }],
    ['2024-01-01T00:00:00Z stderr P first half', { message: 'first half', partial: true, format: 'cri' }],
    ['2024-01-01T00:00:00.5+02:00 stdout F', { message: '', partial: false, format: 'cri' }],
    ['{"log":"GET /x 200\\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}', { message: 'GET /x 200', partial: false, format: 'docker' }],
    ['{"log":"a 16 KiB piece","stream":"stdout","time":"2024-01-01T00:00:00Z"}', { message: 'a 16 KiB piece', partial: true, format: 'docker' }],
    // Access logs that only look alike are left alone.
    ['{"log":"x\\n","stream":"stdout","time":"t","status":200}', null],
    ['{"log":"x\\n"', null],
    ['2024-01-01 00:00:00 stdout F not cri', null],
    ['[2024-01-01T00:00:00.000Z] "GET / HTTP/1.1" 200', null],
  ] as Array<[string, { message: string; partial: boolean; format: string } | null]>)('%s', (line, expected) => {
    expect(stripContainerPrefix(line)).toEqual(expected ?? { message: line, partial: false, format: 'none' });
  });
});
