// The `ztwatch` command: one subcommand per file under cli/commands, loaded on demand so each
// role starts only what it needs.
import { ZtwError } from '../core/errors.ts';

/** Every subcommand and a one-line description; `cli/commands/<name>.ts` exports `run(args)`. */
export const COMMANDS = {
  run: 'all roles in one process (embedded default, or Kafka/ClickHouse by config)',
  demo: 'run + built-in mesh traffic with scripted incidents, printing detections live',
  backtest: 'replay recorded files through ingest, store and detectors; write anomalies as NDJSON',
  collector: 'role: HTTP receivers and file followers, publishing to the bus',
  sink: 'role: bus consumer writing batches to ClickHouse',
  detector: 'role: detectors on event time, writing anomalies',
  api: 'role: query API, /metrics and health',
  simulate: 'generate labelled scenario traffic in real wire formats',
  eval: 'measure detection quality on generated scenarios against static rules',
  access: 'query access history (who accessed what, when, why)',
  verify: 'check the tamper-evidence hash chain of stored batches',
  retention: 'report what is held per table and for how long',
  token: 'create an API token and print its config entry',
  posture: 'STRICT mTLS readiness per namespace, service and port, with the PeerAuthentication to apply',
  policy: 'replay policies on recorded traffic, generate least-privilege policies, list unused permissions',
  'blast-radius': 'what an identity can reach under the policies (multi-hop) next to what it did reach',
} as const;
export type CommandName = keyof typeof COMMANDS;

interface CommandModule {
  run(args: string[]): Promise<number>;
}

function printUsage(): void {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, text]) => `  ${name.padEnd(width)}  ${text}`);
  process.stdout.write(`usage: ztwatch <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nztwatch <command> --help for a command's options.\n`);
}

/** Runs the command line; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    printUsage();
    return name ? 0 : 2;
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`ztwatch: unknown command '${name}'\n\n`);
    printUsage();
    return 2;
  }
  try {
    const mod = (await import(`./commands/${name}.ts`)) as CommandModule;
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof ZtwError) {
      process.stderr.write(`ztwatch ${name}: ${err.message} [${err.code}]\n`);
      return err.code === 'ZTW_CLI_USAGE' ? 2 : 1;
    }
    throw err;
  }
}
