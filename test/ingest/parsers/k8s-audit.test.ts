import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ParseResult } from '../../../core/event.ts';
import { parseK8sAudit, splitEventList } from '../../../ingest/parsers/k8s-audit.ts';
import { detectFormat } from '../../../ingest/parsers/index.ts';
import { expectParseOutcome, type Expected } from '../../helpers/parsers.ts';

const FIXTURES = new URL('../../../../shared/fixtures/k8s-audit/', import.meta.url);
const OBSERVED = Date.UTC(2025, 0, 1);

const readText = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

function check(result: ParseResult, expected: Expected, raw: string): void {
  expectParseOutcome(result, raw, { source: 'k8s_audit', reporter: 'apiserver', dst_service: 'kube-apiserver' }, expected);
}

const forbidden = readText('forbidden-403.json');
const allowedLines = readText('allowed.ndjson').split('\n').filter((l) => l !== '');

describe('parseK8sAudit on fixtures', () => {
  it('forbidden-403.json: a deny with the authorizer reason', () => {
    check(parseK8sAudit(forbidden, OBSERVED), {
      time: Date.UTC(2022, 7, 16, 16, 11, 7, 678),
      request_id: '1d1118b4-8190-4629-ae73-a36a11390098',
      method: 'get',
      path: '/apis?timeout=32s',
      route: '/apis',
      src_identity: '[redacted]',
      // Redacted addresses are no addresses.
      src_ip: '',
      status: 403,
      decision: 'deny',
      decision_reason: 'workspace access not permitted',
    }, forbidden);
  });

  it('allowed.ndjson: the final stage is an event, ResponseStarted is an expected skip', () => {
    const table: Expected[] = [
      {
        time: Date.UTC(2018, 9, 25, 13, 58, 49, 736),
        request_id: '841d3e6d-90d2-43df-8da4-684738bee3d5',
        method: 'create',
        path: '/api/v1/namespaces',
        route: '/api/v1/namespaces',
        src_identity: 'system:anonymous',
        src_ip: '192.168.99.1',
        status: 201,
        decision: 'allow',
        decision_reason: '',
        dst_namespace: '',
      },
      { reject: 'k8s_audit_not_final_stage' },
    ];
    expect(allowedLines).toHaveLength(table.length);
    allowedLines.forEach((line, i) => check(parseK8sAudit(line, OBSERVED), table[i] as Expected, line));
  });

  it('the exec request, at its final stage, templates object names out of the route', () => {
    const complete = (allowedLines[1] as string).replace('"stage":"ResponseStarted"', '"stage":"ResponseComplete"');
    check(parseK8sAudit(complete, OBSERVED), {
      time: Date.UTC(2018, 9, 26, 13, 38, 34, 902),
      src_identity: 'minikube-user',
      method: 'create',
      route: '/api/v1/namespaces/{namespace}/pods/{name}/exec',
      dst_namespace: 'default',
      status: 101,
      decision: 'allow',
    }, complete);
  });
});

describe('parseK8sAudit rules', () => {
  const base = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: '5e0f7f9c-0000-4000-8000-000000000001',
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/payments/secrets/db-password',
    verb: 'get',
    user: { username: 'system:serviceaccount:payments:api', groups: ['system:serviceaccounts'] },
    sourceIPs: ['10.244.1.7'],
    objectRef: { resource: 'secrets', namespace: 'payments', name: 'db-password', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: '2024-03-01T10:00:00.000100Z',
    stageTimestamp: '2024-03-01T10:00:00.004200Z',
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': 'RBAC: allowed by RoleBinding "api" of Role "secrets-reader" to ServiceAccount "api/payments"' },
  };

  it('maps service accounts to SPIFFE and keeps the RBAC reason', () => {
    const line = JSON.stringify(base);
    check(parseK8sAudit(line, OBSERVED), {
      src_identity: 'spiffe://cluster.local/ns/payments/sa/api',
      src_namespace: 'payments',
      src_ip: '10.244.1.7',
      dst_namespace: 'payments',
      route: '/api/v1/namespaces/{namespace}/secrets/{name}',
      decision: 'allow',
      decision_reason: base.annotations['authorization.k8s.io/reason'],
      time: Date.UTC(2024, 2, 1, 10, 0, 0, 4),
    }, line);
    const human = JSON.stringify({ ...base, user: { username: 'alice@example.com', groups: ['system:authenticated'] } });
    check(parseK8sAudit(human, OBSERVED), { src_identity: 'alice@example.com', src_namespace: '' }, human);
  });

  it('a 403 with an empty RBAC reason takes the response message', () => {
    const line = JSON.stringify({
      ...base,
      responseStatus: { code: 403, status: 'Failure', reason: 'Forbidden', message: 'secrets "db-password" is forbidden: User "system:serviceaccount:payments:api" cannot get resource "secrets"' },
      annotations: { 'authorization.k8s.io/decision': 'forbid', 'authorization.k8s.io/reason': '' },
    });
    const result = parseK8sAudit(line, OBSERVED);
    expect(result.ok && result.event.decision).toBe('deny');
    expect(result.ok && result.event.decision_reason).toMatch(/^secrets "db-password" is forbidden/);
  });

  it('401 is a deny, 5xx and Panic are errors, 404 after authorization is an allow', () => {
    const decide = (patch: Record<string, unknown>) => {
      const result = parseK8sAudit(JSON.stringify({ ...base, ...patch }), OBSERVED);
      return result.ok ? [result.event.decision, result.event.status] : [result.reason, 0];
    };
    expect(decide({ responseStatus: { code: 401 }, annotations: {} })).toEqual(['deny', 401]);
    expect(decide({ responseStatus: { code: 503 } })).toEqual(['error', 503]);
    expect(decide({ stage: 'Panic', responseStatus: undefined })).toEqual(['error', 500]);
    expect(decide({ responseStatus: { code: 404 } })).toEqual(['allow', 404]);
    expect(decide({ stage: 'RequestReceived' })).toEqual(['k8s_audit_not_final_stage', 0]);
    expect(decide({ stage: 'Done' })).toEqual(['k8s_audit_bad_stage', 0]);
    expect(decide({ verb: '' })).toEqual(['k8s_audit_missing_fields', 0]);
    expect(decide({ stageTimestamp: 'now', requestReceivedTimestamp: undefined })).toEqual(['k8s_audit_bad_timestamp', 0]);
    expect(decide({ kind: 'Pod' })).toEqual(['k8s_audit_not_an_event', 0]);
  });

  it('splits an EventList (the webhook body) into parseable events', () => {
    const body = { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: [JSON.parse(forbidden), ...allowedLines.map((l) => JSON.parse(l))] };
    const records = splitEventList(body);
    expect(records).toHaveLength(3);
    const outcomes = (records ?? []).map((r) => {
      const result = parseK8sAudit(r, OBSERVED);
      return result.ok ? result.event.decision : result.reason;
    });
    expect(outcomes).toEqual(['deny', 'allow', 'k8s_audit_not_final_stage']);
    // A whole EventList handed to the parser says what it is.
    expect(parseK8sAudit(JSON.stringify(body), OBSERVED)).toEqual({ ok: false, reason: 'k8s_audit_event_list' });
    expect(splitEventList(JSON.parse(forbidden))).toBeUndefined();
    expect(splitEventList({ kind: 'EventList' })).toBeUndefined();
    expect(splitEventList(null)).toBeUndefined();
  });

  it('refuses non-JSON and broken JSON', () => {
    expect(parseK8sAudit('GET /api', OBSERVED)).toEqual({ ok: false, reason: 'k8s_audit_not_json' });
    expect(parseK8sAudit(forbidden.slice(0, 200), OBSERVED)).toEqual({ ok: false, reason: 'k8s_audit_bad_json' });
    expect(parseK8sAudit('', OBSERVED)).toEqual({ ok: false, reason: 'k8s_audit_empty' });
  });
});

describe('format detection', () => {
  it('names k8s-audit for events and EventLists', () => {
    for (const record of [forbidden, ...allowedLines]) expect(detectFormat(record)).toBe('k8s-audit');
    expect(detectFormat(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [] }))).toBe('k8s-audit');
  });
});
