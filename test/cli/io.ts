// Test helper: writable streams that keep what a command printed.
import { Writable } from 'node:stream';

export interface CapturedIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  out(): string;
  err(): string;
}

/** Two in-memory streams standing in for stdout and stderr. */
export function captureIo(): CapturedIo {
  const chunks = { out: [] as string[], err: [] as string[] };
  const sink = (into: string[]) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        into.push(chunk.toString());
        done();
      },
    });
  return { stdout: sink(chunks.out), stderr: sink(chunks.err), out: () => chunks.out.join(''), err: () => chunks.err.join('') };
}
