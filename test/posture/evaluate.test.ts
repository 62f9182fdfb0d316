// Policy semantics, table-tested: the seed articles' policies and examples from the Kubernetes,
// Istio and Cilium documentation, each flow with the verdict those documents give it.
import { describe, expect, it } from 'vitest';
import { evaluateFlow, indexPolicies, matchPathPattern } from '../../posture/evaluate.ts';
import { createConventionResolver, createInventoryResolver, parseInventory, type Flow, type LabelResolver } from '../../posture/flow.ts';
import { parsePolicyYaml } from '../../posture/policies.ts';

const SPIFFE = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

/** A flow from `src` (namespace/workload, or an IP) to `dst` (namespace/service) on `port`. */
function flow(src: string, dst: string, port: number, extra: Partial<Flow> = {}): Flow {
  const [dstNamespace = '', dstService = ''] = dst.split('/');
  const external = /^\d/.test(src);
  const [srcNamespace = '', srcWorkload = ''] = external ? [] : src.split('/');
  return {
    srcIdentity: external ? '' : SPIFFE(srcNamespace, srcWorkload),
    srcWorkload,
    srcNamespace,
    srcIp: external ? src : '10.1.0.9',
    dstService,
    dstNamespace,
    dstPort: port,
    method: 'GET',
    route: '/',
    decision: 'allow',
    observer: 'proxy',
    inbound: true,
    mtls: 'yes',
    count: 1,
    lastSeenMs: 0,
    ...extra,
  };
}

type Case = readonly [name: string, flow: Flow, allowed: boolean];

function check(yaml: string, cases: readonly Case[], resolver: LabelResolver = createConventionResolver()): void {
  const index = indexPolicies(parsePolicyYaml(yaml, 'policies.yaml').policies);
  const got = cases.map(([name, f]) => [name, evaluateFlow(index, f, resolver).allowed]);
  expect(got).toEqual(cases.map(([name, , allowed]) => [name, allowed]));
}

// Seed: "only allow checkout-api to call payment-service".
const PAYMENT_POLICY = `
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: payment-service-policy
  namespace: production
spec:
  selector:
    matchLabels:
      app: payment-service
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/production/sa/checkout-api"]
    to:
    - operation:
        methods: ["POST"]
        paths: ["/v1/charges"]
`;

// Seed: default-deny.yml and allow-api-to-db.yml.
const DEFAULT_DENY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
  namespace: production
spec:
  podSelector: {}
  policyTypes:
    - Ingress
    - Egress
`;
const API_TO_DB = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-to-database
  namespace: production
spec:
  podSelector:
    matchLabels:
      app: postgres
  policyTypes:
    - Ingress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: api-service
      ports:
        - port: 5432
          protocol: TCP
`;

const STRICT = `
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
  namespace: production
spec:
  mtls:
    mode: STRICT
`;

describe('Istio AuthorizationPolicy', () => {
  it('seed payment-service policy: only checkout-api, only POST /v1/charges; other workloads untouched', () => {
    check(PAYMENT_POLICY, [
      ['checkout-api POST /v1/charges', flow('production/checkout-api', 'production/payment-service', 8080, { method: 'POST', route: '/v1/charges' }), true],
      ['checkout-api GET /v1/charges', flow('production/checkout-api', 'production/payment-service', 8080, { method: 'GET', route: '/v1/charges' }), false],
      ['checkout-api POST /v1/refunds', flow('production/checkout-api', 'production/payment-service', 8080, { method: 'POST', route: '/v1/refunds' }), false],
      ['cart POST /v1/charges', flow('production/cart', 'production/payment-service', 8080, { method: 'POST', route: '/v1/charges' }), false],
      ['no identity (plaintext IP)', flow('203.0.113.7', 'production/payment-service', 8080, { method: 'POST', route: '/v1/charges' }), false],
      ['other workload not selected', flow('production/cart', 'production/orders', 8080), true],
      ['same name in another namespace not selected', flow('production/cart', 'staging/payment-service', 8080), true],
      ['TCP flow: ALLOW rule with HTTP fields never matches', flow('production/checkout-api', 'production/payment-service', 8080, { method: '', route: '' }), false],
      ['network observer records: sidecar policy not applied', flow('production/cart', 'production/payment-service', 8080, { observer: 'network', method: '', route: '' }), true],
      ['sending-side record (client of a gateway): sidecar policy not applied', flow('203.0.113.7', 'production/payment-service', 8080, { inbound: false }), true],
    ]);
  });

  // istio.io reference: the httpbin ALLOW example (without its JWT `when`, which flows cannot show).
  const HTTPBIN = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
`;
  it('docs httpbin example: sources OR-ed, operations OR-ed, fields AND-ed, prefix paths', () => {
    check(HTTPBIN, [
      ['sleep GET /info/{id}', flow('default/sleep', 'foo/httpbin', 8000, { route: '/info/{id}' }), true],
      ['sleep GET /information', flow('default/sleep', 'foo/httpbin', 8000, { route: '/information' }), true],
      ['test ns POST /data', flow('test/anything', 'foo/httpbin', 8000, { method: 'POST', route: '/data' }), true],
      ['test ns POST /info', flow('test/anything', 'foo/httpbin', 8000, { method: 'POST', route: '/info' }), false],
      ['sleep GET /data', flow('default/sleep', 'foo/httpbin', 8000, { route: '/data' }), false],
      ['other ns GET /info', flow('prod/sleep', 'foo/httpbin', 8000, { route: '/info' }), false],
      ['every workload of foo is selected (no selector)', flow('prod/sleep', 'foo/other', 8000, { route: '/info' }), false],
    ]);
  });

  it('DENY wins over ALLOW; AUDIT changes nothing; ALLOW with no rules allows nothing', () => {
    const yaml = `${HTTPBIN}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-method-get-to-secret, namespace: foo }
spec:
  action: DENY
  rules:
  - to:
    - operation: { methods: ["GET"], paths: ["/info/secret*"] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: audit-all, namespace: foo }
spec:
  action: AUDIT
  rules:
  - {}
`;
    check(yaml, [
      ['sleep GET /info/public', flow('default/sleep', 'foo/httpbin', 8000, { route: '/info/public' }), true],
      ['sleep GET /info/secret', flow('default/sleep', 'foo/httpbin', 8000, { route: '/info/secret' }), false],
      ['other ns GET /info/public', flow('prod/x', 'foo/httpbin', 8000, { route: '/info/public' }), false],
    ]);
    check(`apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-nothing, namespace: foo }\nspec: {}\n`, [
      ['anything in foo', flow('foo/a', 'foo/b', 80), false],
      ['outside foo', flow('foo/a', 'bar/b', 80), true],
    ]);
    check(`apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: deny-nothing, namespace: foo }\nspec: { action: DENY }\n`, [['DENY without rules', flow('foo/a', 'foo/b', 80), true]]);
    const audit = indexPolicies(parsePolicyYaml(yaml, 'p.yaml').policies);
    expect(evaluateFlow(audit, flow('default/sleep', 'foo/httpbin', 8000, { route: '/info/x' }), createConventionResolver()).audited).toEqual(['AuthorizationPolicy foo/audit-all']);
  });

  it('root-namespace policies apply in every namespace; DENY ignores HTTP-only fields on TCP flows; ports, notPrincipals, ipBlocks, when', () => {
    const yaml = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: global-deny-admin, namespace: istio-system }
spec:
  selector: { matchLabels: { app: api } }
  action: DENY
  rules:
  - from: [{ source: { notPrincipals: ["cluster.local/ns/ops/*"] } }]
    to: [{ operation: { paths: ["/admin*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db, namespace: data }
spec:
  selector: { matchLabels: { app: db } }
  rules:
  - from: [{ source: { ipBlocks: ["10.8.0.0/16"] } }]
    to: [{ operation: { ports: ["5432"] } }]
  - when: [{ key: source.namespace, values: ["batch"] }]
`;
    check(yaml, [
      ['shop → any /admin', flow('shop/web', 'shop/api', 80, { route: '/admin/users' }), false],
      ['ops → any /admin', flow('ops/runner', 'shop/api', 80, { route: '/admin/users' }), true],
      ['shop → TCP (DENY ignores paths, so it denies)', flow('shop/web', 'shop/api', 80, { method: '', route: '' }), false],
      ['root policy selects app=api in any namespace', flow('shop/web', 'billing/api', 80, { route: '/admin' }), false],
      ['10.8.x → db:5432', flow('10.8.3.4', 'data/db', 5432, { method: '', route: '' }), true],
      ['10.9.x → db:5432', flow('10.9.3.4', 'data/db', 5432, { method: '', route: '' }), false],
      ['10.8.x → db:5433', flow('10.8.3.4', 'data/db', 5433, { method: '', route: '' }), false],
      ['batch namespace → db (when)', flow('batch/job', 'data/db', 5433, { method: '', route: '' }), true],
    ]);
  });
});

describe('Istio PeerAuthentication', () => {
  it('seed STRICT rejects plaintext in its namespace only; workload and port-level modes override', () => {
    const yaml = `${STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: legacy, namespace: production }
spec:
  selector: { matchLabels: { app: legacy } }
  mtls: { mode: STRICT }
  portLevelMtls:
    "9090": { mode: PERMISSIVE }
`;
    check(yaml, [
      ['mTLS to production', flow('production/a', 'production/b', 80, { mtls: 'yes' }), true],
      ['plaintext to production', flow('10.2.3.4', 'production/b', 80, { mtls: 'no' }), false],
      ['unknown TLS state is not plaintext', flow('production/a', 'production/b', 80, { mtls: 'unknown' }), true],
      ['plaintext to staging', flow('10.2.3.4', 'staging/b', 80, { mtls: 'no' }), true],
      ['plaintext to legacy:9090 (port PERMISSIVE)', flow('10.2.3.4', 'production/legacy', 9090, { mtls: 'no' }), true],
      ['plaintext to legacy:80', flow('10.2.3.4', 'production/legacy', 80, { mtls: 'no' }), false],
    ]);
  });
});

describe('Kubernetes NetworkPolicy', () => {
  it('seed default-deny + api-to-database: isolation per direction, policies add up', () => {
    check(`${DEFAULT_DENY}---${API_TO_DB}`, [
      // default-deny-all also isolates api-service for egress, and nothing allows its egress.
      ['api-service → postgres:5432 (egress of api-service isolated)', flow('production/api-service', 'production/postgres', 5432), false],
      ['web → api-service', flow('production/web', 'production/api-service', 80), false],
      ['other namespace → staging', flow('staging/a', 'staging/b', 80), true],
    ]);
    check(API_TO_DB, [
      ['api-service → postgres:5432', flow('production/api-service', 'production/postgres', 5432), true],
      ['api-service → postgres:5433', flow('production/api-service', 'production/postgres', 5433), false],
      ['web → postgres:5432', flow('production/web', 'production/postgres', 5432), false],
      ['api-service of another namespace → postgres', flow('staging/api-service', 'production/postgres', 5432), false],
      ['api-service → unselected pod', flow('production/api-service', 'production/web', 80), true],
    ]);
    const allowEgress = `${DEFAULT_DENY}---${API_TO_DB}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: api-egress, namespace: production }
spec:
  podSelector: { matchLabels: { app: api-service } }
  policyTypes: [Egress]
  egress:
  - to: [{ podSelector: { matchLabels: { app: postgres } } }]
    ports: [{ port: 5432 }]
`;
    check(allowEgress, [['api-service → postgres:5432 once egress is allowed too', flow('production/api-service', 'production/postgres', 5432), true]]);
  });

  it('docs test-network-policy example, with labels from an inventory', () => {
    const inventory = parseInventory(
      JSON.stringify({
        kind: 'List',
        items: [
          { kind: 'Namespace', metadata: { name: 'default' } },
          { kind: 'Namespace', metadata: { name: 'proj', labels: { project: 'myproject' } } },
          { kind: 'Namespace', metadata: { name: 'other' } },
          { kind: 'Pod', metadata: { name: 'db-0', namespace: 'default', labels: { app: 'db', role: 'db' } }, spec: { serviceAccountName: 'db' }, status: { podIP: '10.0.0.5' } },
          { kind: 'Pod', metadata: { name: 'fe-0', namespace: 'default', labels: { app: 'fe', role: 'frontend' } }, spec: { serviceAccountName: 'fe' }, status: { podIP: '10.0.0.6' } },
          { kind: 'Pod', metadata: { name: 'be-0', namespace: 'default', labels: { app: 'be', role: 'backend' } }, spec: { serviceAccountName: 'be' }, status: { podIP: '10.0.0.7' } },
          { kind: 'Pod', metadata: { name: 'x-0', namespace: 'proj', labels: { app: 'x' } }, spec: { serviceAccountName: 'x' }, status: { podIP: '10.0.1.8' } },
          { kind: 'Pod', metadata: { name: 'y-0', namespace: 'other', labels: { app: 'y', role: 'frontend' } }, spec: { serviceAccountName: 'y' }, status: { podIP: '10.0.2.9' } },
        ],
      }),
    );
    if (typeof inventory === 'string') throw new Error(inventory);
    const yaml = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`;
    const resolver = createInventoryResolver(inventory);
    check(
      yaml,
      [
        ['172.17.0.4 → db:6379', flow('172.17.0.4', 'default/db', 6379), true],
        ['172.17.1.4 (except) → db:6379', flow('172.17.1.4', 'default/db', 6379), false],
        ['pod of namespace project=myproject → db:6379', flow('proj/x', 'default/db', 6379), true],
        ['role=frontend in default → db:6379', flow('default/fe', 'default/db', 6379), true],
        ['role=frontend in another namespace → db:6379', flow('other/y', 'default/db', 6379), false],
        ['role=backend → db:6379', flow('default/be', 'default/db', 6379), false],
        ['role=frontend → db:5432', flow('default/fe', 'default/db', 5432), false],
      ],
      resolver,
    );
  });
});

describe('Cilium network policies', () => {
  it('docs L3/L4 examples: default-deny once selected, identity via endpoint selectors, deny wins', () => {
    const yaml = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: l3-l4-rule, namespace: app }
spec:
  endpointSelector: { matchLabels: { app: backend } }
  ingress:
  - fromEndpoints:
    - matchLabels: { app: frontend }
    toPorts:
    - ports: [{ port: "80", protocol: TCP }]
  - fromEndpoints:
    - matchLabels: { "k8s:io.kubernetes.pod.namespace": monitoring }
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: deny-from-world-to-backend }
spec:
  endpointSelector: { matchLabels: { app: backend } }
  ingressDeny:
  - fromEntities: [world]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: cidr, namespace: app }
spec:
  endpointSelector: { matchLabels: { app: gateway } }
  ingress:
  - fromCIDR: [203.0.113.0/24]
`;
    check(yaml, [
      ['frontend → backend:80', flow('app/frontend', 'app/backend', 80), true],
      ['frontend → backend:81', flow('app/frontend', 'app/backend', 81), false],
      ['frontend of another namespace → backend:80 (CNP selectors stay in their namespace)', flow('web/frontend', 'app/backend', 80), false],
      ['monitoring namespace → backend:any', flow('monitoring/prom', 'app/backend', 9090), true],
      ['world → backend (deny wins)', flow('198.51.100.1', 'app/backend', 80), false],
      ['203.0.113.9 → gateway', flow('203.0.113.9', 'app/gateway', 443), true],
      ['198.51.100.1 → gateway', flow('198.51.100.1', 'app/gateway', 443), false],
      ['anything → unselected endpoint', flow('app/frontend', 'app/other', 80), true],
    ]);
  });

  it('Kubernetes and Cilium policies add up in one network layer', () => {
    check(
      `${API_TO_DB}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: metrics, namespace: production }
spec:
  endpointSelector: { matchLabels: { app: postgres } }
  ingress:
  - fromEndpoints: [{ matchLabels: { app: prometheus } }]
    toPorts: [{ ports: [{ port: "9187" }] }]
`,
      [
        ['api-service → postgres:5432 (NetworkPolicy)', flow('production/api-service', 'production/postgres', 5432), true],
        ['prometheus → postgres:9187 (Cilium)', flow('production/prometheus', 'production/postgres', 9187), true],
        ['prometheus → postgres:5432', flow('production/prometheus', 'production/postgres', 5432), false],
      ],
    );
  });
});

describe('route templates against Istio paths', () => {
  it.each([
    ['/v1/charges', '/v1/charges', true],
    ['/v1/charges', '/v1/charges/{id}', false],
    ['/api/orders/17', '/api/orders/{id}', true],
    ['/api/orders/*', '/api/orders/{id}', true],
    ['/api/ord*', '/api/orders/{id}', true],
    ['/api/orders/*', '/api/users/{id}', false],
    ['*/export', '/api/v1/{name}/export', true],
    ['*/export', '/api/v1/x/import', false],
    ['*', '/anything', true],
  ])('%s vs %s → %s', (pattern, route, expected) => {
    expect(matchPathPattern(pattern, route)).toBe(expected);
  });
});
