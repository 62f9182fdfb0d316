// Reading policy documents: multi-document YAML and Lists; malformed or unsupported fields are
// errors naming file, document and field — never a silently more permissive policy.
import { describe, expect, it } from 'vitest';
import type { ZtwError } from '../../core/errors.ts';
import { parsePolicyYaml } from '../../posture/policies.ts';

function failure(yaml: string): ZtwError {
  try {
    parsePolicyYaml(yaml, 'bad.yaml');
  } catch (err) {
    return err as ZtwError;
  }
  throw new Error('expected an error');
}

const AP = (spec: string) => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p, namespace: foo }\nspec:\n${spec}\n`;

describe('parsePolicyYaml', () => {
  it('reads every kind from multi-document YAML and Lists, skipping other kinds with a note', () => {
    const set = parsePolicyYaml(
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: { name: np }
  spec: { podSelector: {} }
---
${AP('  action: DENY\n  rules: [{}]')}---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: { name: default, namespace: prod }
spec: { mtls: { mode: STRICT } }
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: c }
specs:
- endpointSelector: {}
  egress: [{ toEntities: [world] }]
`,
      'all.yaml',
    );
    expect(set.policies.map((p) => `${p.kind} ${p.origin.namespace}/${p.origin.name}`)).toEqual([
      'NetworkPolicy default/np',
      'AuthorizationPolicy foo/p',
      'PeerAuthentication prod/default',
      'CiliumClusterwideNetworkPolicy /c',
    ]);
    expect(set.notes).toEqual(['all.yaml, document 0 (web): kind Deployment is not a policy; skipped']);
    const np = set.policies[0];
    expect(np?.kind === 'NetworkPolicy' && np.isolatesIngress && !np.isolatesEgress).toBe(true);
  });

  it.each([
    ['CUSTOM action', AP('  action: CUSTOM\n  provider: { name: ext }\n  rules: [{}]'), 'ZTW_POSTURE_POLICY_UNSUPPORTED', 'bad.yaml, document 0 (p), spec.action: CUSTOM'],
    ['JWT condition', AP('  rules:\n  - when: [{ key: "request.auth.claims[iss]", values: [x] }]'), 'ZTW_POSTURE_POLICY_UNSUPPORTED', 'spec.rules[0].when[0].key'],
    ['requestPrincipals', AP('  rules:\n  - from: [{ source: { requestPrincipals: ["*"] } }]'), 'ZTW_POSTURE_POLICY_UNSUPPORTED', 'spec.rules[0].from[0].source.requestPrincipals'],
    ['misspelt field', AP('  rules:\n  - from: [{ source: { principal: ["a"] } }]'), 'ZTW_POSTURE_POLICY_UNSUPPORTED', 'spec.rules[0].from[0].source.principal: unknown field'],
    ['bad port', AP('  rules:\n  - to: [{ operation: { ports: ["80x"] } }]'), 'ZTW_POSTURE_POLICY_INVALID', 'spec.rules[0].to[0].operation.ports[0]'],
    ['bad action', AP('  action: PERMIT'), 'ZTW_POSTURE_POLICY_INVALID', 'spec.action'],
    ['bad CIDR', AP('  rules:\n  - from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }]'), 'ZTW_POSTURE_POLICY_INVALID', 'source.ipBlocks[0]'],
    [
      'named port',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: n }\nspec:\n  podSelector: {}\n  ingress: [{ ports: [{ port: http }] }]\n',
      'ZTW_POSTURE_POLICY_UNSUPPORTED',
      'spec.ingress[0].ports[0].port: named port',
    ],
    ['no podSelector', 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: n }\nspec: { ingress: [] }\n', 'ZTW_POSTURE_POLICY_INVALID', 'spec.podSelector'],
    [
      'Cilium L7 rules',
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: c }\nspec:\n  endpointSelector: {}\n  ingress: [{ toPorts: [{ ports: [{ port: "80" }], rules: { http: [{ method: GET }] } }] }]\n',
      'ZTW_POSTURE_POLICY_UNSUPPORTED',
      'spec.ingress[0].toPorts[0].rules',
    ],
    ['Cilium FQDN', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: c }\nspec:\n  endpointSelector: {}\n  egress: [{ toFQDNs: [{ matchName: x.io }] }]\n', 'ZTW_POSTURE_POLICY_UNSUPPORTED', 'spec.egress[0].toFQDNs'],
    ['wrong apiVersion', 'apiVersion: v1\nkind: NetworkPolicy\nmetadata: { name: n }\nspec: { podSelector: {} }\n', 'ZTW_POSTURE_POLICY_INVALID', 'apiVersion'],
    ['broken YAML', 'kind: [unclosed\n', 'ZTW_POSTURE_POLICY_INVALID', 'bad.yaml, document 0: YAML error'],
  ])('%s → %s naming the field', (_name, yaml, code, fragment) => {
    const err = failure(yaml);
    expect(err.code, err.message).toBe(code);
    expect(err.message).toContain(fragment);
  });

  it('names the document index of the failing document', () => {
    const err = failure(`${AP('  rules: []')}---\n${AP('  action: NOPE')}`);
    expect(err.message).toContain('bad.yaml, document 1 (p), spec.action');
    expect(err.details).toMatchObject({ file: 'bad.yaml', document: 1, field: 'spec.action' });
  });
});
