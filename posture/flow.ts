// Flows and endpoint labels: what policies are evaluated against. A flow is one aggregated group of
// recorded events (source, destination, port, method, route, recorded decision) with its count and
// last sighting; selectors need labels that access logs do not carry, so labels come from a
// `kubectl get pods,namespaces -A -o json` inventory or, without one, from a naming convention.

/** One aggregated flow: every recorded event with the same source, destination and request shape. */
export interface Flow {
  readonly srcIdentity: string;
  readonly srcWorkload: string;
  readonly srcNamespace: string;
  readonly srcIp: string;
  readonly dstService: string;
  readonly dstNamespace: string;
  readonly dstPort: number;
  /** Empty for L4-only records (Hubble). */
  readonly method: string;
  /** Low-cardinality route template (`/api/orders/{id}`); empty for L4-only records. */
  readonly route: string;
  /** Recorded decision: allow | deny | error | unknown. */
  readonly decision: string;
  /** `network` for L3/L4 observers (Hubble), `proxy` for sidecars and gateways. */
  readonly observer: 'network' | 'proxy';
  /**
   * Recorded by the receiving side (an inbound sidecar), where the destination's sidecar policies
   * act. Records of the sending side or a gateway name the gateway's client as the source, which
   * the destination's sidecar never sees.
   */
  readonly inbound: boolean;
  /** mTLS as recorded: yes | no | unknown. */
  readonly mtls: string;
  readonly count: number;
  readonly lastSeenMs: number;
}

/** Labels of one endpoint (pod) and of its namespace. */
export interface Endpoint {
  /** False for a source outside the cluster (an external IP): selectors never match it. */
  readonly inCluster: boolean;
  readonly namespace: string;
  /** Workload name (the `app` label by convention). */
  readonly workload: string;
  readonly serviceAccount: string;
  readonly ip: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly namespaceLabels: Readonly<Record<string, string>>;
}

/** Resolves the labels of flow endpoints. */
export interface LabelResolver {
  /** `inventory` (a kubectl dump) or `convention` (app = workload, namespace name label). */
  readonly mode: 'inventory' | 'convention';
  source(flow: Flow): Endpoint;
  destination(flow: Flow): Endpoint;
}

/** What the convention resolver assumes, printed with every result that depends on it. */
export const CONVENTION_NOTE =
  'labels by convention (no --inventory): pod label app=<workload> (also app.kubernetes.io/name), namespace label kubernetes.io/metadata.name=<namespace>, service account = workload';

const SPIFFE = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** Namespace and service account of a SPIFFE ID (`spiffe://td/ns/<ns>/sa/<sa>`), if it has that form. */
export function parseSpiffeId(identity: string): { namespace: string; serviceAccount: string } | undefined {
  const m = SPIFFE.exec(identity);
  return m ? { namespace: m[1] as string, serviceAccount: m[2] as string } : undefined;
}

/** Istio's principal form of an identity: the SPIFFE ID without `spiffe://`. */
export function toPrincipal(identity: string): string {
  return identity.startsWith('spiffe://') ? identity.slice('spiffe://'.length) : identity;
}

function conventionEndpoint(namespace: string, workload: string, serviceAccount: string, ip: string): Endpoint {
  if (!namespace && !workload) return { inCluster: false, namespace: '', workload: '', serviceAccount: '', ip, labels: {}, namespaceLabels: {} };
  return {
    inCluster: true,
    namespace,
    workload,
    serviceAccount,
    ip,
    labels: workload ? { app: workload, 'app.kubernetes.io/name': workload } : {},
    namespaceLabels: { 'kubernetes.io/metadata.name': namespace },
  };
}

/** Source side of a flow by the naming convention (workload, namespace, or parsed from the SPIFFE ID). */
function conventionSource(flow: Flow): Endpoint {
  const spiffe = parseSpiffeId(flow.srcIdentity);
  const namespace = flow.srcNamespace || spiffe?.namespace || '';
  const workload = flow.srcWorkload || spiffe?.serviceAccount || '';
  return conventionEndpoint(namespace, workload, spiffe?.serviceAccount ?? workload, flow.srcIp);
}

/** The convention resolver: `app=<workload>`, `kubernetes.io/metadata.name=<namespace>`. */
export function createConventionResolver(): LabelResolver {
  return {
    mode: 'convention',
    source: conventionSource,
    destination: (flow) => conventionEndpoint(flow.dstNamespace, flow.dstService, flow.dstService, ''),
  };
}

interface InventoryPod {
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly serviceAccount: string;
  readonly ip: string;
  readonly workload: string;
}

function readLabels(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Parsed `kubectl get pods,namespaces -A -o json` output. */
export interface Inventory {
  readonly pods: readonly InventoryPod[];
  readonly namespaces: ReadonlyMap<string, Record<string, string>>;
}

/**
 * Reads a kubectl JSON dump (a `List` of Pod and Namespace items); returns a message for what is
 * not one, so the caller can name the file.
 */
export function parseInventory(text: string): Inventory | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  const items = (doc as { items?: unknown }).items;
  if (!Array.isArray(items)) return 'no "items" list (expected the output of kubectl get pods,namespaces -A -o json)';
  const pods: InventoryPod[] = [];
  const namespaces = new Map<string, Record<string, string>>();
  items.forEach((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) return;
    const { kind, metadata, spec, status } = item as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown; labels?: unknown }; spec?: { serviceAccountName?: unknown }; status?: { podIP?: unknown } };
    if (kind === 'Namespace' && typeof metadata?.name === 'string') {
      namespaces.set(metadata.name, { 'kubernetes.io/metadata.name': metadata.name, ...readLabels(metadata.labels) });
    } else if (kind === 'Pod' && typeof metadata?.namespace === 'string') {
      const labels = readLabels(metadata.labels);
      const serviceAccount = typeof spec?.serviceAccountName === 'string' ? spec.serviceAccountName : 'default';
      pods.push({
        namespace: metadata.namespace,
        labels,
        serviceAccount,
        ip: typeof status?.podIP === 'string' ? status.podIP : '',
        workload: labels.app ?? labels['app.kubernetes.io/name'] ?? (typeof metadata.name === 'string' ? metadata.name : `pod-${i}`),
      });
    }
  });
  return { pods, namespaces };
}

/** Resolver over an inventory: pods by IP, by namespace + workload, by namespace + service account. */
export function createInventoryResolver(inventory: Inventory): LabelResolver {
  const byIp = new Map<string, InventoryPod>();
  const byWorkload = new Map<string, InventoryPod>();
  const byAccount = new Map<string, InventoryPod>();
  for (const pod of inventory.pods) {
    if (pod.ip) byIp.set(pod.ip, pod);
    byWorkload.set(`${pod.namespace}/${pod.workload}`, pod);
    if (!byAccount.has(`${pod.namespace}/${pod.serviceAccount}`)) byAccount.set(`${pod.namespace}/${pod.serviceAccount}`, pod);
  }
  const fromPod = (pod: InventoryPod, ip: string): Endpoint => ({
    inCluster: true,
    namespace: pod.namespace,
    workload: pod.workload,
    serviceAccount: pod.serviceAccount,
    ip,
    labels: pod.labels,
    namespaceLabels: inventory.namespaces.get(pod.namespace) ?? { 'kubernetes.io/metadata.name': pod.namespace },
  });
  const withNamespaceLabels = (e: Endpoint): Endpoint =>
    e.inCluster ? { ...e, namespaceLabels: inventory.namespaces.get(e.namespace) ?? e.namespaceLabels } : e;
  return {
    mode: 'inventory',
    source(flow) {
      const spiffe = parseSpiffeId(flow.srcIdentity);
      const namespace = flow.srcNamespace || spiffe?.namespace || '';
      const pod =
        (flow.srcWorkload && byWorkload.get(`${namespace}/${flow.srcWorkload}`)) ||
        (spiffe && byAccount.get(`${spiffe.namespace}/${spiffe.serviceAccount}`)) ||
        (flow.srcIp && byIp.get(flow.srcIp)) ||
        undefined;
      return pod ? fromPod(pod, flow.srcIp) : withNamespaceLabels(conventionSource(flow));
    },
    destination(flow) {
      const pod = byWorkload.get(`${flow.dstNamespace}/${flow.dstService}`);
      return pod ? fromPod(pod, '') : withNamespaceLabels(conventionEndpoint(flow.dstNamespace, flow.dstService, flow.dstService, ''));
    },
  };
}
