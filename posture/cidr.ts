// IPv4 and IPv6 addresses and CIDR blocks, for ipBlocks, fromCIDR and the like.

/** A parsed CIDR block: family, network bits as a bigint, prefix length. */
export interface Cidr {
  readonly v6: boolean;
  readonly network: bigint;
  readonly prefix: number;
  readonly text: string;
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    value = (value << 8n) | BigInt(Number(p));
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.split('::').length > 2) return undefined;
  const [head = '', tail] = text.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const expand = (list: string[]): number[] | undefined => {
    const out: number[] = [];
    for (const [i, g] of list.entries()) {
      if (i === list.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const h = expand(groups(head));
  const t = tail === undefined ? [] : expand(groups(tail));
  if (!h || !t) return undefined;
  const missing = 8 - h.length - t.length;
  if ((tail === undefined && missing !== 0) || missing < 0) return undefined;
  let value = 0n;
  for (const g of [...h, ...Array<number>(missing).fill(0), ...t]) value = (value << 16n) | BigInt(g);
  return value;
}

/** An address as family + value, or undefined when `text` is not an IP address. */
export function parseIp(text: string): { v6: boolean; value: bigint } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { v6: false, value: v4 };
  const v6 = text.includes(':') ? parseIpv6(text) : undefined;
  return v6 === undefined ? undefined : { v6: true, value: v6 };
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = '', bits, ...rest] = text.split('/');
  if (rest.length > 0) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const width = ip.v6 ? 128 : 32;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = bits === undefined ? width : Number(bits);
  if (prefix > width) return undefined;
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(width - prefix);
  return { v6: ip.v6, network: ip.value & mask, prefix, text };
}

/** True when `ip` (text) lies in `cidr`. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const parsed = parseIp(ip);
  if (!parsed || parsed.v6 !== cidr.v6) return false;
  const width = cidr.v6 ? 128 : 32;
  const mask = cidr.prefix === 0 ? 0n : ((1n << BigInt(cidr.prefix)) - 1n) << BigInt(width - cidr.prefix);
  return (parsed.value & mask) === cidr.network;
}
