// Policy documents as `kubectl apply -f` takes them (multi-document YAML, or a `List`), read into
// plain typed values: Kubernetes NetworkPolicy, Istio AuthorizationPolicy and PeerAuthentication,
// Cilium(Clusterwide)NetworkPolicy. Reading is strict: a field this code cannot evaluate is an error
// naming the file, the document (index and name) and the field path — a policy is never read as
// more permissive than it is. Other kinds (Deployments, Services) are skipped with a note.
import { parseAllDocuments } from 'yaml';
import { createError } from '../core/errors.ts';
import { parseCidr, type Cidr } from './cidr.ts';

/** Where a policy came from, for messages and reports. */
export interface Origin {
  readonly file: string;
  /** 0-based document index in the file. */
  readonly index: number;
  readonly kind: PolicyKind;
  readonly name: string;
  readonly namespace: string;
}

export type PolicyKind = 'NetworkPolicy' | 'AuthorizationPolicy' | 'PeerAuthentication' | 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';
const KINDS: readonly PolicyKind[] = ['NetworkPolicy', 'AuthorizationPolicy', 'PeerAuthentication', 'CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy'];

/** A Kubernetes label selector. An empty selector selects everything. */
export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: ReadonlyArray<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values: readonly string[] }>;
}

/** A port condition (NetworkPolicy / Cilium): protocol, and a port or range; no port = every port. */
export interface PortRule {
  readonly protocol: 'TCP' | 'UDP' | 'SCTP' | 'ANY';
  readonly port?: number;
  readonly endPort?: number;
  /** Field path, for unused-permission reports. */
  readonly path: string;
}

export interface IpBlock {
  readonly cidr: Cidr;
  readonly except: readonly Cidr[];
}

// ---- Istio ----

/** One `source` of an Istio rule; absent fields are unconstrained. */
export interface IstioSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly ipBlocks?: readonly Cidr[];
  readonly notIpBlocks?: readonly Cidr[];
  readonly path: string;
}

/** One `operation` of an Istio rule. */
export interface IstioOperation {
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly ports?: readonly number[];
  readonly notPorts?: readonly number[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
  readonly path: string;
}

/** A `when` condition on a key this code can evaluate from recorded flows. */
export interface IstioCondition {
  readonly key: 'source.ip' | 'remote.ip' | 'source.namespace' | 'source.principal' | 'destination.port';
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
  readonly path: string;
}

export interface IstioRule {
  /** Empty: any source. Several: any of them. */
  readonly from: readonly IstioSource[];
  readonly to: readonly IstioOperation[];
  readonly when: readonly IstioCondition[];
  readonly path: string;
}

export interface AuthorizationPolicy {
  readonly kind: 'AuthorizationPolicy';
  readonly origin: Origin;
  /** Null: every workload in the namespace (the whole mesh in the root namespace). */
  readonly selector: LabelSelector | null;
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT';
  /** An ALLOW policy without rules allows nothing; a DENY without rules denies nothing. */
  readonly rules: readonly IstioRule[];
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNSET';

export interface PeerAuthentication {
  readonly kind: 'PeerAuthentication';
  readonly origin: Origin;
  readonly selector: LabelSelector | null;
  readonly mode: MtlsMode;
  readonly portLevel: ReadonlyMap<number, MtlsMode>;
}

// ---- Kubernetes ----

/** A NetworkPolicy peer: pods (by pod and/or namespace selector) or an IP block. */
export interface NetworkPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IpBlock;
  readonly path: string;
}

/** One ingress or egress rule: peers (empty = any) and ports (empty = any). */
export interface NetworkRule {
  readonly peers: readonly NetworkPeer[];
  readonly ports: readonly PortRule[];
  readonly path: string;
}

export interface NetworkPolicy {
  readonly kind: 'NetworkPolicy';
  readonly origin: Origin;
  readonly podSelector: LabelSelector;
  /** Isolation per direction, from policyTypes (default: Ingress, plus Egress when egress rules exist). */
  readonly isolatesIngress: boolean;
  readonly isolatesEgress: boolean;
  readonly ingress: readonly NetworkRule[];
  readonly egress: readonly NetworkRule[];
}

// ---- Cilium ----

/** One Cilium ingress/egress rule: endpoints, CIDRs and entities (any of them), and ports. */
export interface CiliumRule {
  /** `from` for ingress rules, `to` for egress rules (the field names' prefix). */
  readonly direction: 'from' | 'to';
  /** Undefined: no L3 constraint given in this rule (every peer). */
  readonly endpoints?: readonly LabelSelector[];
  readonly cidrs?: readonly IpBlock[];
  readonly entities?: readonly ('all' | 'world' | 'cluster')[];
  readonly ports: readonly PortRule[];
  readonly path: string;
}

/** One rule set of a Cilium policy (`spec`, or one entry of `specs`). */
export interface CiliumSpec {
  readonly endpointSelector: LabelSelector;
  readonly ingress?: readonly CiliumRule[];
  readonly ingressDeny?: readonly CiliumRule[];
  readonly egress?: readonly CiliumRule[];
  readonly egressDeny?: readonly CiliumRule[];
  readonly defaultDenyIngress?: boolean;
  readonly defaultDenyEgress?: boolean;
  readonly path: string;
}

export interface CiliumPolicy {
  readonly kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';
  readonly origin: Origin;
  readonly specs: readonly CiliumSpec[];
}

export type Policy = AuthorizationPolicy | PeerAuthentication | NetworkPolicy | CiliumPolicy;

/** Policies read from files, and notes on skipped documents. */
export interface PolicySet {
  readonly policies: readonly Policy[];
  readonly notes: readonly string[];
}

// ---- reading ----

type Obj = Record<string, unknown>;

class Reader {
  constructor(
    private readonly file: string,
    private readonly index: number,
    private readonly name: string,
  ) {}

  fail(path: string, message: string, unsupported = false): never {
    throw createError(unsupported ? 'POSTURE_POLICY_UNSUPPORTED' : 'POSTURE_POLICY_INVALID', `${this.file}, document ${this.index}${this.name ? ` (${this.name})` : ''}, ${path}: ${message}`, {
      details: { file: this.file, document: this.index, name: this.name, field: path },
    });
  }

  obj(value: unknown, path: string, allowed: readonly string[], unsupported: readonly string[] = []): Obj {
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(path, 'expected a mapping');
    for (const key of Object.keys(value as Obj)) {
      if (unsupported.includes(key)) this.fail(`${path}.${key}`, 'not supported by replay (cannot be evaluated from recorded flows)', true);
      if (!allowed.includes(key)) this.fail(`${path}.${key}`, `unknown field (expected one of: ${allowed.join(', ')})`, true);
    }
    return value as Obj;
  }

  list(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) this.fail(path, 'expected a list');
    return value;
  }

  strings(value: unknown, path: string): string[] | undefined {
    const list = this.list(value, path);
    return list?.map((v, i) => {
      if (typeof v !== 'string' && typeof v !== 'number') this.fail(`${path}[${i}]`, 'expected a string');
      return String(v);
    });
  }

  ports(value: unknown, path: string): number[] | undefined {
    return this.strings(value, path)?.map((p, i) => this.port(p, `${path}[${i}]`));
  }

  port(value: unknown, path: string): number {
    const text = String(value);
    if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
      if (/^[a-z][a-z0-9-]*$/i.test(text)) this.fail(path, `named port "${text}" needs container port names, which recorded flows lack; use the number`, true);
      this.fail(path, `"${text}" is not a port number (1-65535)`);
    }
    return Number(text);
  }

  cidr(value: unknown, path: string): Cidr {
    const c = typeof value === 'string' ? parseCidr(value) : undefined;
    if (!c) this.fail(path, `"${String(value)}" is not an IP address or CIDR block`);
    return c;
  }

  cidrs(value: unknown, path: string): Cidr[] | undefined {
    return this.strings(value, path)?.map((v, i) => this.cidr(v, `${path}[${i}]`));
  }

  selector(value: unknown, path: string): LabelSelector {
    const o = this.obj(value, path, ['matchLabels', 'matchExpressions']);
    const labels = this.obj(o.matchLabels, `${path}.matchLabels`, Object.keys((o.matchLabels as Obj | undefined) ?? {}));
    const matchLabels: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') this.fail(`${path}.matchLabels.${k}`, 'expected a string');
      matchLabels[k] = String(v);
    }
    const matchExpressions = (this.list(o.matchExpressions, `${path}.matchExpressions`) ?? []).map((e, i) => {
      const p = `${path}.matchExpressions[${i}]`;
      const x = this.obj(e, p, ['key', 'operator', 'values']);
      if (typeof x.key !== 'string') this.fail(`${p}.key`, 'expected a string');
      const operator = x.operator;
      if (operator !== 'In' && operator !== 'NotIn' && operator !== 'Exists' && operator !== 'DoesNotExist') this.fail(`${p}.operator`, `"${String(operator)}": use In, NotIn, Exists or DoesNotExist`);
      const values = this.strings(x.values, `${p}.values`) ?? [];
      if ((operator === 'In' || operator === 'NotIn') && values.length === 0) this.fail(`${p}.values`, `${operator} needs values`);
      return { key: String(x.key), operator: operator as LabelSelector['matchExpressions'][number]['operator'], values };
    });
    return { matchLabels, matchExpressions };
  }

  portRules(value: unknown, path: string): PortRule[] {
    return (this.list(value, path) ?? []).map((e, i) => {
      const p = `${path}[${i}]`;
      const o = this.obj(e, p, ['port', 'protocol', 'endPort']);
      const protocol = o.protocol === undefined ? 'TCP' : String(o.protocol).toUpperCase();
      if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP' && protocol !== 'ANY') this.fail(`${p}.protocol`, `"${String(o.protocol)}": use TCP, UDP, SCTP or ANY`);
      const port = o.port === undefined || o.port === null || o.port === '0' || o.port === 0 ? undefined : this.port(o.port, `${p}.port`);
      const endPort = o.endPort === undefined ? undefined : this.port(o.endPort, `${p}.endPort`);
      if (endPort !== undefined && (port === undefined || endPort < port)) this.fail(`${p}.endPort`, 'needs a port not above it');
      return { protocol, path: p, ...(port === undefined ? {} : { port }), ...(endPort === undefined ? {} : { endPort }) };
    });
  }

  ipBlock(value: unknown, path: string): IpBlock {
    const o = this.obj(value, path, ['cidr', 'except']);
    if (o.cidr === undefined) this.fail(`${path}.cidr`, 'required');
    return { cidr: this.cidr(o.cidr, `${path}.cidr`), except: this.cidrs(o.except, `${path}.except`) ?? [] };
  }
}

function readMtlsMode(r: Reader, value: unknown, path: string): MtlsMode {
  if (value === undefined || value === null) return 'UNSET';
  if (value !== 'STRICT' && value !== 'PERMISSIVE' && value !== 'DISABLE' && value !== 'UNSET') r.fail(path, `"${String(value)}": use STRICT, PERMISSIVE, DISABLE or UNSET`);
  return value;
}

function readAuthorizationPolicy(r: Reader, origin: Origin, spec: Obj): AuthorizationPolicy {
  const s = r.obj(spec, 'spec', ['selector', 'action', 'rules', 'provider'], ['targetRef', 'targetRefs']);
  const action = s.action ?? 'ALLOW';
  if (action === 'CUSTOM') r.fail('spec.action', 'CUSTOM delegates to an external authorizer whose answers cannot be replayed; replay its engine instead (OPA bundles: policy replay --opa-bundle)', true);
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') r.fail('spec.action', `"${String(action)}": use ALLOW, DENY, AUDIT or CUSTOM`);
  if (s.provider !== undefined) r.fail('spec.provider', 'only meaningful with the CUSTOM action', true);
  const selector = s.selector === undefined || s.selector === null ? null : r.selector(s.selector, 'spec.selector');
  const rules = (r.list(s.rules, 'spec.rules') ?? []).map((rule, i): IstioRule => {
    const p = `spec.rules[${i}]`;
    const o = r.obj(rule, p, ['from', 'to', 'when']);
    const from = (r.list(o.from, `${p}.from`) ?? []).map((f, j): IstioSource => {
      const fp = `${p}.from[${j}]`;
      const src = r.obj(r.obj(f, fp, ['source']).source, `${fp}.source`, ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'], ['requestPrincipals', 'notRequestPrincipals', 'serviceAccounts', 'notServiceAccounts']);
      const sp = `${fp}.source`;
      const ipBlocks = [...(r.cidrs(src.ipBlocks, `${sp}.ipBlocks`) ?? []), ...(r.cidrs(src.remoteIpBlocks, `${sp}.remoteIpBlocks`) ?? [])];
      const notIpBlocks = [...(r.cidrs(src.notIpBlocks, `${sp}.notIpBlocks`) ?? []), ...(r.cidrs(src.notRemoteIpBlocks, `${sp}.notRemoteIpBlocks`) ?? [])];
      const out: { -readonly [K in keyof IstioSource]: IstioSource[K] } = { path: sp };
      const principals = r.strings(src.principals, `${sp}.principals`);
      if (principals) out.principals = principals;
      const notPrincipals = r.strings(src.notPrincipals, `${sp}.notPrincipals`);
      if (notPrincipals) out.notPrincipals = notPrincipals;
      const namespaces = r.strings(src.namespaces, `${sp}.namespaces`);
      if (namespaces) out.namespaces = namespaces;
      const notNamespaces = r.strings(src.notNamespaces, `${sp}.notNamespaces`);
      if (notNamespaces) out.notNamespaces = notNamespaces;
      if (src.ipBlocks !== undefined || src.remoteIpBlocks !== undefined) out.ipBlocks = ipBlocks;
      if (notIpBlocks.length > 0) out.notIpBlocks = notIpBlocks;
      return out;
    });
    const to = (r.list(o.to, `${p}.to`) ?? []).map((t, j): IstioOperation => {
      const tp = `${p}.to[${j}]`;
      const op = r.obj(r.obj(t, tp, ['operation']).operation, `${tp}.operation`, ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths']);
      const opPath = `${tp}.operation`;
      const out: { -readonly [K in keyof IstioOperation]: IstioOperation[K] } = { path: opPath };
      for (const key of ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const) {
        const v = r.strings(op[key], `${opPath}.${key}`);
        if (v) out[key] = v;
      }
      const ports = r.ports(op.ports, `${opPath}.ports`);
      if (ports) out.ports = ports;
      const notPorts = r.ports(op.notPorts, `${opPath}.notPorts`);
      if (notPorts) out.notPorts = notPorts;
      return out;
    });
    const when = (r.list(o.when, `${p}.when`) ?? []).map((w, j): IstioCondition => {
      const wp = `${p}.when[${j}]`;
      const c = r.obj(w, wp, ['key', 'values', 'notValues']);
      const key = c.key;
      if (key !== 'source.ip' && key !== 'remote.ip' && key !== 'source.namespace' && key !== 'source.principal' && key !== 'destination.port') {
        r.fail(`${wp}.key`, `"${String(key)}" is not recorded in flows (supported: source.ip, remote.ip, source.namespace, source.principal, destination.port)`, true);
      }
      const values = r.strings(c.values, `${wp}.values`);
      const notValues = r.strings(c.notValues, `${wp}.notValues`);
      if (!values && !notValues) r.fail(wp, 'needs values or notValues');
      if (key === 'source.ip' || key === 'remote.ip') [...(values ?? []), ...(notValues ?? [])].forEach((v, k) => r.cidr(v, `${wp}.values[${k}]`));
      return { key, path: wp, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) };
    });
    return { from, to, when, path: p };
  });
  return { kind: 'AuthorizationPolicy', origin, selector, action, rules };
}

function readPeerAuthentication(r: Reader, origin: Origin, spec: Obj): PeerAuthentication {
  const s = r.obj(spec, 'spec', ['selector', 'mtls', 'portLevelMtls']);
  const mtls = r.obj(s.mtls, 'spec.mtls', ['mode']);
  const portLevel = new Map<number, MtlsMode>();
  const levels = r.obj(s.portLevelMtls, 'spec.portLevelMtls', Object.keys((s.portLevelMtls as Obj | undefined) ?? {}));
  for (const [port, value] of Object.entries(levels)) {
    const p = `spec.portLevelMtls.${port}`;
    portLevel.set(r.port(port, p), readMtlsMode(r, r.obj(value, p, ['mode']).mode, `${p}.mode`));
  }
  const selector = s.selector === undefined || s.selector === null ? null : r.selector(s.selector, 'spec.selector');
  if (portLevel.size > 0 && !selector) r.fail('spec.portLevelMtls', 'Istio applies port-level mTLS only to policies with a workload selector');
  return { kind: 'PeerAuthentication', origin, selector, mode: readMtlsMode(r, mtls.mode, 'spec.mtls.mode'), portLevel };
}

function readNetworkPolicy(r: Reader, origin: Origin, spec: Obj): NetworkPolicy {
  const s = r.obj(spec, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress']);
  if (s.podSelector === undefined) r.fail('spec.podSelector', 'required (use {} for every pod in the namespace)');
  const podSelector = r.selector(s.podSelector, 'spec.podSelector');
  const readRules = (value: unknown, path: string, peerKey: 'from' | 'to'): NetworkRule[] =>
    (r.list(value, path) ?? []).map((rule, i) => {
      const p = `${path}[${i}]`;
      const o = r.obj(rule, p, [peerKey, 'ports']);
      const peers = (r.list(o[peerKey], `${p}.${peerKey}`) ?? []).map((peer, j): NetworkPeer => {
        const pp = `${p}.${peerKey}[${j}]`;
        const x = r.obj(peer, pp, ['podSelector', 'namespaceSelector', 'ipBlock']);
        if (x.ipBlock !== undefined && (x.podSelector !== undefined || x.namespaceSelector !== undefined)) r.fail(pp, 'ipBlock cannot be combined with pod or namespace selectors');
        if (x.ipBlock === undefined && x.podSelector === undefined && x.namespaceSelector === undefined) r.fail(pp, 'a peer needs podSelector, namespaceSelector or ipBlock');
        return {
          path: pp,
          ...(x.podSelector !== undefined ? { podSelector: r.selector(x.podSelector, `${pp}.podSelector`) } : {}),
          ...(x.namespaceSelector !== undefined ? { namespaceSelector: r.selector(x.namespaceSelector, `${pp}.namespaceSelector`) } : {}),
          ...(x.ipBlock !== undefined ? { ipBlock: r.ipBlock(x.ipBlock, `${pp}.ipBlock`) } : {}),
        };
      });
      return { peers, ports: r.portRules(o.ports, `${p}.ports`), path: p };
    });
  const ingress = readRules(s.ingress, 'spec.ingress', 'from');
  const egress = readRules(s.egress, 'spec.egress', 'to');
  const types = r.strings(s.policyTypes, 'spec.policyTypes');
  types?.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') r.fail(`spec.policyTypes[${i}]`, `"${t}": use Ingress or Egress`);
  });
  // Kubernetes default: Ingress always, Egress when the policy has egress rules.
  const isolatesIngress = types ? types.includes('Ingress') : true;
  const isolatesEgress = types ? types.includes('Egress') : s.egress !== undefined && s.egress !== null;
  return { kind: 'NetworkPolicy', origin, podSelector, isolatesIngress, isolatesEgress, ingress, egress };
}

const CILIUM_ENTITIES = ['all', 'world', 'cluster'] as const;

function readCiliumRules(r: Reader, value: unknown, path: string, direction: 'from' | 'to'): CiliumRule[] | undefined {
  const list = r.list(value, path);
  if (!list) return undefined;
  const endpointsKey = `${direction}Endpoints`;
  const cidrKey = `${direction}CIDR`;
  const cidrSetKey = `${direction}CIDRSet`;
  const entitiesKey = `${direction}Entities`;
  const unsupported = [`${direction}Requires`, `${direction}Services`, `${direction}FQDNs`, `${direction}Groups`, `${direction}Nodes`, 'icmps', 'authentication'];
  return list.map((rule, i) => {
    const p = `${path}[${i}]`;
    const o = r.obj(rule, p, [endpointsKey, cidrKey, cidrSetKey, entitiesKey, 'toPorts'], unsupported);
    const out: { -readonly [K in keyof CiliumRule]: CiliumRule[K] } = { path: p, ports: [], direction };
    const endpoints = r.list(o[endpointsKey], `${p}.${endpointsKey}`);
    if (endpoints) out.endpoints = endpoints.map((e, j) => r.selector(e, `${p}.${endpointsKey}[${j}]`));
    const cidrs: IpBlock[] = [...(r.cidrs(o[cidrKey], `${p}.${cidrKey}`) ?? []).map((cidr) => ({ cidr, except: [] }))];
    (r.list(o[cidrSetKey], `${p}.${cidrSetKey}`) ?? []).forEach((set, j) => {
      const sp = `${p}.${cidrSetKey}[${j}]`;
      const x = r.obj(set, sp, ['cidr', 'except'], ['cidrGroupRef', 'cidrGroupSelector']);
      cidrs.push(r.ipBlock(x, sp));
    });
    if (o[cidrKey] !== undefined || o[cidrSetKey] !== undefined) out.cidrs = cidrs;
    const entities = r.strings(o[entitiesKey], `${p}.${entitiesKey}`);
    if (entities) {
      out.entities = entities.map((e, j) => {
        if (!(CILIUM_ENTITIES as readonly string[]).includes(e)) r.fail(`${p}.${entitiesKey}[${j}]`, `entity "${e}" cannot be told apart in recorded flows (supported: ${CILIUM_ENTITIES.join(', ')})`, true);
        return e as (typeof CILIUM_ENTITIES)[number];
      });
    }
    const ports: PortRule[] = [];
    (r.list(o.toPorts, `${p}.toPorts`) ?? []).forEach((tp, j) => {
      const tpp = `${p}.toPorts[${j}]`;
      const x = r.obj(tp, tpp, ['ports'], ['rules', 'terminatingTLS', 'originatingTLS', 'serverNames', 'listener']);
      const portList = r.portRules(x.ports, `${tpp}.ports`);
      ports.push(...(portList.length > 0 ? portList : [{ protocol: 'ANY' as const, path: tpp }]));
    });
    out.ports = ports;
    return out;
  });
}

function readCiliumSpec(r: Reader, value: unknown, path: string): CiliumSpec {
  const s = r.obj(value, path, ['endpointSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'enableDefaultDeny', 'description', 'labels'], ['nodeSelector']);
  if (s.endpointSelector === undefined) r.fail(`${path}.endpointSelector`, 'required (nodeSelector policies are not supported)', true);
  const out: { -readonly [K in keyof CiliumSpec]: CiliumSpec[K] } = { path, endpointSelector: r.selector(s.endpointSelector, `${path}.endpointSelector`) };
  const ingress = readCiliumRules(r, s.ingress, `${path}.ingress`, 'from');
  if (ingress) out.ingress = ingress;
  const ingressDeny = readCiliumRules(r, s.ingressDeny, `${path}.ingressDeny`, 'from');
  if (ingressDeny) out.ingressDeny = ingressDeny;
  const egress = readCiliumRules(r, s.egress, `${path}.egress`, 'to');
  if (egress) out.egress = egress;
  const egressDeny = readCiliumRules(r, s.egressDeny, `${path}.egressDeny`, 'to');
  if (egressDeny) out.egressDeny = egressDeny;
  const dd = r.obj(s.enableDefaultDeny, `${path}.enableDefaultDeny`, ['ingress', 'egress']);
  if (typeof dd.ingress === 'boolean') out.defaultDenyIngress = dd.ingress;
  if (typeof dd.egress === 'boolean') out.defaultDenyEgress = dd.egress;
  return out;
}

function readDocument(file: string, index: number, doc: unknown, out: Policy[], notes: string[]): void {
  if (doc === null || doc === undefined) return;
  const bare = new Reader(file, index, '');
  const top = typeof doc === 'object' && !Array.isArray(doc) ? (doc as Obj) : bare.fail('(document)', 'expected a Kubernetes object (a mapping with kind)');
  if (top.kind === 'List' && Array.isArray(top.items)) {
    top.items.forEach((item, i) => readDocument(`${file}#items[${i}]`, index, item, out, notes));
    return;
  }
  const meta = (typeof top.metadata === 'object' && top.metadata !== null ? top.metadata : {}) as Obj;
  const name = typeof meta.name === 'string' ? meta.name : '';
  const r: Reader = new Reader(file, index, name);
  const kindValue = top.kind;
  if (typeof kindValue !== 'string') r.fail('kind', 'missing');
  if (!(KINDS as readonly string[]).includes(kindValue)) {
    notes.push(`${file}, document ${index}${name ? ` (${name})` : ''}: kind ${kindValue} is not a policy; skipped`);
    return;
  }
  const kind = kindValue as PolicyKind;
  const apiVersion = String(top.apiVersion ?? '');
  const group = kind === 'NetworkPolicy' ? 'networking.k8s.io/' : kind.startsWith('Cilium') ? 'cilium.io/' : 'security.istio.io/';
  if (!apiVersion.startsWith(group)) r.fail('apiVersion', `"${apiVersion}" is not a ${group}* version of ${kind}`);
  if (!name) r.fail('metadata.name', 'required');
  const namespace = kind === 'CiliumClusterwideNetworkPolicy' ? '' : typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : 'default';
  const origin: Origin = { file, index, kind, name, namespace };
  const spec = top.spec as Obj | undefined;
  switch (kind) {
    case 'AuthorizationPolicy':
      out.push(readAuthorizationPolicy(r, origin, spec ?? {}));
      return;
    case 'PeerAuthentication':
      out.push(readPeerAuthentication(r, origin, spec ?? {}));
      return;
    case 'NetworkPolicy':
      if (spec === undefined) r.fail('spec', 'required');
      out.push(readNetworkPolicy(r, origin, spec as Obj));
      return;
    default: {
      const specs: CiliumSpec[] = [];
      if (top.spec !== undefined) specs.push(readCiliumSpec(r, top.spec, 'spec'));
      (r.list(top.specs, 'specs') ?? []).forEach((s, i) => specs.push(readCiliumSpec(r, s, `specs[${i}]`)));
      if (specs.length === 0) r.fail('spec', 'a Cilium policy needs spec or specs');
      out.push({ kind, origin, specs });
    }
  }
}

/** Reads every policy of one YAML text (multi-document); throws a coded error naming file, document and field. */
export function parsePolicyYaml(text: string, file: string): PolicySet {
  const policies: Policy[] = [];
  const notes: string[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, index) => {
    const error = doc.errors[0];
    if (error) {
      throw createError('POSTURE_POLICY_INVALID', `${file}, document ${index}: YAML error: ${error.message.split('\n')[0]}`, { details: { file, document: index } });
    }
    readDocument(file, index, doc.toJS({ maxAliasCount: 100 }), policies, notes);
  });
  return { policies, notes };
}

/** Joins policy sets read from several files. */
export function mergePolicySets(sets: readonly PolicySet[]): PolicySet {
  return { policies: sets.flatMap((s) => s.policies), notes: sets.flatMap((s) => s.notes) };
}

/** `kind namespace/name` of a policy, as reports print it. */
export function describePolicy(origin: Origin): string {
  return `${origin.kind} ${origin.namespace ? `${origin.namespace}/` : ''}${origin.name}`;
}
