// Rollout guidance for the console (role analyst): STRICT readiness, policy replay and unused
// permissions for policy YAML sent in the body, least-privilege generation, blast radius. Bodies
// are the multi-document YAML `kubectl apply -f` takes (application/yaml, text/yaml, text/plain),
// or JSON `{ "policies": "<yaml>", "inventory": <kubectl get pods,namespaces -A -o json> }`;
// replay also takes an OPA bundle (`.tar.gz`, application/gzip), evaluated by the real `opa`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { createError, hasCode } from '../core/errors.ts';
import type { Store } from '../store/client.ts';
import { queryMtlsPosture, queryOpaDecisions, queryOpenFindings } from '../store/posture-queries.ts';
import { computeBlastRadius } from '../posture/blast-radius.ts';
import { indexPolicies } from '../posture/evaluate.ts';
import { CONVENTION_NOTE, createConventionResolver, createInventoryResolver, parseInventory, type LabelResolver } from '../posture/flow.ts';
import { GENERATE_FORMATS, generatePolicies, type GenerateFormat } from '../posture/generate.ts';
import { loadFlows } from '../posture/history.ts';
import { buildMtlsReport } from '../posture/mtls.ts';
import { findOpaBin, readRecordedDecision, replayOpaDecisions, type RecordedDecision } from '../posture/opa.ts';
import { parsePolicyYaml, type PolicySet } from '../posture/policies.ts';
import { replayFlows } from '../posture/replay.ts';
import { measureUsage } from '../posture/unused.ts';
import { withErrors } from './schemas.ts';

/** Longest look-back a request may ask for, in days (the default event retention). */
const MAX_WINDOW_DAYS = 400;
/** Largest policy body, in bytes. */
const MAX_POLICY_BYTES = 4 * 1024 * 1024;
/** Rows of denied/changed flows returned at most. */
const MAX_ROWS = 1000;
/** Newest recorded OPA decisions replayed through a bundle at most. */
const MAX_OPA_DECISIONS = 100_000;
/** Content types of an OPA bundle body (`opa build` writes a .tar.gz). */
const BUNDLE_TYPES = ['application/gzip', 'application/x-gzip', 'application/x-compressed-tar'];

const Window = (fallback: string) =>
  Type.Optional(Type.String({ pattern: '^[0-9]{1,6}(m|h|d)$', default: fallback, description: `Look-back from now: 90m, 12h, 30d (default ${fallback})` }));

const MtlsQuerySchema = Type.Object({ window: Window('7d'), namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) }, { additionalProperties: false });
const WindowQuerySchema = (fallback: string) => Type.Object({ window: Window(fallback) }, { additionalProperties: false });
const GenerateQuerySchema = Type.Object({ window: Window('30d'), format: Type.Union(GENERATE_FORMATS.map((f) => Type.Literal(f)), { description: 'Policy kind to write' }) }, { additionalProperties: false });
const BlastQuerySchema = Type.Object(
  { window: Window('30d'), identity: Type.String({ minLength: 1, maxLength: 1024, description: 'SPIFFE ID or source IP' }), hops: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 6 })) },
  { additionalProperties: false },
);
const PolicyBodySchema = {
  description: 'Policy YAML (multi-document), or JSON { policies: "<yaml>", inventory?: <kubectl JSON dump> }',
  content: {
    'application/yaml': { schema: { type: 'string' } },
    'text/plain': { schema: { type: 'string' } },
    'application/json': { schema: { type: 'object', properties: { policies: { type: 'string' }, inventory: { type: 'object' } }, required: ['policies'] } },
  },
};
const ReplayBodySchema = {
  description: `${PolicyBodySchema.description}, or an OPA bundle (.tar.gz as opa build writes it) as application/gzip`,
  content: { ...PolicyBodySchema.content, ...Object.fromEntries(BUNDLE_TYPES.map((t) => [t, { schema: {} }])) },
};
const ReportSchema = Type.Object({}, { additionalProperties: true, description: 'Report (see docs/posture.md)' });

function readWindowMs(window: string | undefined, fallback: string): { fromMs: number; toMs: number } {
  const m = /^(\d+)(m|h|d)$/.exec(window ?? fallback);
  if (!m) throw createError('API_BAD_REQUEST', `window ${window}: use 90m, 12h or 30d`);
  const ms = Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  if (ms <= 0 || ms > MAX_WINDOW_DAYS * 86_400_000) throw createError('API_BAD_REQUEST', `window ${window}: between 1m and ${MAX_WINDOW_DAYS}d`);
  const toMs = Date.now();
  return { fromMs: toMs - ms, toMs };
}

/** Policies and label resolver from a request body. */
function readBody(body: unknown, required: boolean): { set: PolicySet; resolver: LabelResolver; labels: string } {
  let yaml: string | undefined;
  let inventory: unknown;
  if (typeof body === 'string') yaml = body;
  else if (typeof body === 'object' && body !== null) {
    const b = body as { policies?: unknown; inventory?: unknown };
    if (typeof b.policies !== 'string') throw createError('API_BAD_REQUEST', 'body.policies must be policy YAML text');
    yaml = b.policies;
    inventory = b.inventory;
  }
  if (yaml === undefined || yaml.trim() === '') {
    if (required) throw createError('API_BAD_REQUEST', 'the body must hold policy YAML');
    yaml = '';
  }
  const set = parsePolicyYaml(yaml, 'request body');
  if (required && set.policies.length === 0) throw createError('API_BAD_REQUEST', 'the body holds no NetworkPolicy, AuthorizationPolicy, PeerAuthentication or Cilium policy');
  if (inventory === undefined) return { set, resolver: createConventionResolver(), labels: CONVENTION_NOTE };
  const parsed = parseInventory(JSON.stringify(inventory));
  if (typeof parsed === 'string') throw createError('POSTURE_INVENTORY_INVALID', `body.inventory: ${parsed}`);
  return { set, resolver: createInventoryResolver(parsed), labels: 'labels from the inventory in the request' };
}

/**
 * Replays the recorded OPA decisions of the window through the bundle in `body` (a .tar.gz). What
 * `opa` refuses in the bundle is the request's fault (400); a missing `opa` is the server's.
 */
async function replayBundle(store: Store, body: Buffer, window: { fromMs: number; toMs: number }): Promise<Record<string, unknown>> {
  if (body.length < 2 || body[0] !== 0x1f || body[1] !== 0x8b) throw createError('API_BAD_REQUEST', 'the body is not a gzip file: send the OPA bundle as .tar.gz (opa build)');
  const rows = await queryOpaDecisions(store, { ...window, limit: MAX_OPA_DECISIONS });
  const decisions = rows.map((r) => readRecordedDecision(r.raw, r.time_ms)).filter((d): d is RecordedDecision => d !== undefined);
  const dir = await mkdtemp(join(tmpdir(), 'ztwatch-bundle-'));
  try {
    const bundle = join(dir, 'bundle.tar.gz');
    await writeFile(bundle, body);
    let result: Awaited<ReturnType<typeof replayOpaDecisions>>;
    try {
      result = await replayOpaDecisions(findOpaBin(), bundle, decisions);
    } catch (err) {
      const cause = (err as { cause?: { code?: unknown } }).cause;
      if (hasCode(err, 'ZTW_POSTURE_OPA_FAILED') && cause?.code !== 'ENOENT') throw createError('API_BAD_REQUEST', `OPA bundle: ${err.message.replaceAll(bundle, 'bundle.tar.gz')}`);
      throw err;
    }
    return {
      from: new Date(window.fromMs).toISOString(),
      to: new Date(window.toMs).toISOString(),
      opa: { replayed: result.replayed, skipped: rows.length - decisions.length, changed_decisions: result.changed.length, changed: result.changed.slice(0, MAX_ROWS) },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Registers /v1/posture/*. */
export function registerPostureRoutes(app: FastifyInstance, store: Store): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string', bodyLimit: MAX_POLICY_BYTES }, (_request, body, done) => done(null, body));
    scope.addContentTypeParser(BUNDLE_TYPES, { parseAs: 'buffer', bodyLimit: MAX_POLICY_BYTES }, (_request, body, done) => done(null, body));
    const common = { tags: ['posture'], security: [{ bearerAuth: [] }] };

    scope.get<{ Querystring: Static<typeof MtlsQuerySchema> }>(
      '/v1/posture/mtls',
      { config: { auth: 'graph' }, schema: { ...common, summary: 'STRICT mTLS readiness per namespace, service and port, with the PeerAuthentication to apply', querystring: MtlsQuerySchema, response: withErrors({ 200: ReportSchema }) } },
      async (request) => {
        const window = readWindowMs(request.query.window, '7d');
        const { ports, senders } = await queryMtlsPosture(store, { ...window, ...(request.query.namespace ? { namespace: request.query.namespace } : {}) });
        return { from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), ...buildMtlsReport(ports, senders) };
      },
    );

    scope.post<{ Querystring: Static<ReturnType<typeof WindowQuerySchema>> }>(
      '/v1/posture/replay',
      {
        config: { auth: 'graph' },
        bodyLimit: MAX_POLICY_BYTES,
        schema: {
          ...common,
          summary: 'Replay policies (or an OPA bundle) on recorded flows (OPA decisions): what they would deny, which decisions change',
          querystring: WindowQuerySchema('30d'),
          body: ReplayBodySchema,
          response: withErrors({ 200: ReportSchema }),
        },
      },
      async (request) => {
        if (Buffer.isBuffer(request.body)) return replayBundle(store, request.body, readWindowMs(request.query.window, '30d'));
        const { set, resolver, labels } = readBody(request.body, true);
        const window = readWindowMs(request.query.window, '30d');
        const result = replayFlows(set.policies, await loadFlows(store, window), resolver);
        return {
          from: new Date(window.fromMs).toISOString(),
          to: new Date(window.toMs).toISOString(),
          notes: set.notes,
          policies: set.policies.length,
          ...result,
          labels,
          denied: result.denied.slice(0, MAX_ROWS),
          changed: result.changed.slice(0, MAX_ROWS),
          denied_flows: result.denied.length,
          changed_flows: result.changed.length,
        };
      },
    );

    scope.post<{ Querystring: Static<ReturnType<typeof WindowQuerySchema>> }>(
      '/v1/posture/unused',
      {
        config: { auth: 'graph' },
        bodyLimit: MAX_POLICY_BYTES,
        schema: { ...common, summary: 'Rules, sources and ports the policies allow that no traffic used', querystring: WindowQuerySchema('90d'), body: PolicyBodySchema, response: withErrors({ 200: ReportSchema }) },
      },
      async (request) => {
        const { set, resolver, labels } = readBody(request.body, true);
        const window = readWindowMs(request.query.window, '90d');
        const usage = measureUsage(set.policies, await loadFlows(store, window), resolver);
        return { from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), labels, elements: usage.length, rows: usage.filter((u) => u.requests === 0) };
      },
    );

    scope.get<{ Querystring: Static<typeof GenerateQuerySchema> }>(
      '/v1/posture/generate',
      { config: { auth: 'graph' }, schema: { ...common, summary: 'Least-privilege policies from observed allowed traffic', querystring: GenerateQuerySchema, response: withErrors({ 200: ReportSchema }) } },
      async (request) => {
        const window = readWindowMs(request.query.window, '30d');
        const exclude = await queryOpenFindings(store);
        const flows = await loadFlows(store, { ...window, decision: 'allow', exclude });
        const generated = generatePolicies(flows, request.query.format as GenerateFormat, createConventionResolver(), [CONVENTION_NOTE]);
        return { from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), labels: CONVENTION_NOTE, excluded_findings: exclude.length, ...generated };
      },
    );

    const blastRadius = async (query: Static<typeof BlastQuerySchema>, body: unknown, withPolicies: boolean) => {
      const { set, resolver, labels } = readBody(body, withPolicies);
      const window = readWindowMs(query.window, '30d');
      const flows = await loadFlows(store, window);
      const result = computeBlastRadius(query.identity, flows, withPolicies ? indexPolicies(set.policies) : null, resolver, query.hops ?? 6);
      return { from: new Date(window.fromMs).toISOString(), to: new Date(window.toMs).toISOString(), labels, ...result };
    };
    scope.get<{ Querystring: Static<typeof BlastQuerySchema> }>(
      '/v1/posture/blast-radius',
      { config: { auth: 'graph' }, schema: { ...common, summary: 'What an identity did reach, multi-hop (POST policies to add what it can reach)', querystring: BlastQuerySchema, response: withErrors({ 200: ReportSchema }) } },
      async (request) => blastRadius(request.query, undefined, false),
    );
    scope.post<{ Querystring: Static<typeof BlastQuerySchema> }>(
      '/v1/posture/blast-radius',
      {
        config: { auth: 'graph' },
        bodyLimit: MAX_POLICY_BYTES,
        schema: { ...common, summary: 'What an identity can reach under the policies in the body, next to what it did reach', querystring: BlastQuerySchema, body: PolicyBodySchema, response: withErrors({ 200: ReportSchema }) },
      },
      async (request) => blastRadius(request.query, request.body, true),
    );
  });
}
