// DDL building blocks shared by every migration file: one node (MergeTree) or a cluster
// (ON CLUSTER, Replicated*MergeTree locals behind Distributed tables), chosen by `clickhouse.cluster`.
// Kept apart from schema.ts so migration files can import them without an import cycle.

/** What migrations need to know about the deployment. */
export interface SchemaContext {
  readonly database: string;
  /** Empty for a single node. */
  readonly cluster: string;
  readonly retentionDays: number;
  readonly anomalyRetentionDays: number;
  readonly deadLetterRetentionDays: number;
  readonly auditRetentionDays: number;
}

export interface Migration {
  /** Ordered, never renumbered: applied ids are recorded in `schema_migrations`. */
  readonly id: number;
  readonly name: string;
  statements(ctx: SchemaContext): string[];
}

/**
 * Retried sink batches carry the same insert_deduplication_token and are dropped; rollups fed by
 * materialized views need the same window, or a retried batch would count twice there.
 */
export const DEDUP = 'SETTINGS non_replicated_deduplication_window = 1000';

/** `ON CLUSTER x` or nothing. */
export function onCluster(ctx: SchemaContext): string {
  return ctx.cluster ? ` ON CLUSTER ${ctx.cluster}` : '';
}

/** Physical table name: with a cluster, data lives in `<name>_local` behind a Distributed `<name>`. */
export function localTable(ctx: SchemaContext, name: string): string {
  return ctx.cluster ? `${ctx.database}.${name}_local` : `${ctx.database}.${name}`;
}

/** MergeTree flavour for one node or a replicated cluster. */
function engine(ctx: SchemaContext, kind: string, name: string, args = ''): string {
  if (!ctx.cluster) return `${kind}(${args})`;
  const path = `'/clickhouse/tables/{shard}/${ctx.database}/${name}'`;
  return `Replicated${kind}(${path}, '{replica}'${args ? `, ${args}` : ''})`;
}

/** A table created locally and, on a cluster, fronted by a Distributed table of the plain name. */
export function createTableStatements(ctx: SchemaContext, name: string, body: string, kind: string, tail: string, args = '', shardKey = 'rand()'): string[] {
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${localTable(ctx, name)}${onCluster(ctx)} (${body}) ENGINE = ${engine(ctx, kind, name, args)} ${tail}`,
  ];
  if (ctx.cluster) {
    statements.push(
      `CREATE TABLE IF NOT EXISTS ${ctx.database}.${name}${onCluster(ctx)} AS ${localTable(ctx, name)} ENGINE = Distributed(${ctx.cluster}, ${ctx.database}, ${name}_local, ${shardKey})`,
    );
  }
  return statements;
}

