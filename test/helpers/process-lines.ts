// Test helper: the output of a child process, line by line, for tests that wait for a line
// (`ready on http://…`) or print a process's tail when something fails.
import type { ChildProcess } from 'node:child_process';

/** Appends every complete line `child` writes to stdout or stderr to `lines`, as it arrives. */
export function collectLines(child: ChildProcess, lines: string[]): void {
  let buffer = '';
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
}
