// Network addresses as sources write them (`ip:port`, `[v6]:port`, bare hosts), split without
// throwing.

/**
 * Splits `10.0.0.1:8080`, `[fe80::1]:443`, `tcp://10.0.2.1:80` into ip and port. A bare IPv6
 * address or a host without a port keeps port 0. `-` and '' give empty parts.
 */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = portColon(address);
  return { host: hostBefore(address, colon), port: portAfter(address, colon) };
}

/**
 * Index of the `:` that separates the port in `address`, or -1: none, or a bare IPv6 address.
 * A `scheme://` prefix is allowed before the host.
 */
function portColon(address: string): number {
  // indexOf first: most hosts have no colon at all, and it scans faster than lastIndexOf.
  const first = address.indexOf(':');
  if (first < 0) return -1;
  const colon = address.lastIndexOf(':');
  if (colon === address.length - 1) return -1;
  if (first === colon) return colon;
  if (address.charCodeAt(colon - 1) === 93 /* ] */) return colon;
  // `tcp://host:port`: the only other colon is the scheme's.
  return address.startsWith('://', first) && address.indexOf(':', first + 3) === colon ? colon : -1;
}

/** The host part of an address (as splitHostPort), without allocating a pair: for hot paths. */
export function addressHost(address: string): string {
  return hostBefore(address, portColon(address));
}

function hostBefore(address: string, colon: number): string {
  if (address === '' || address === '-') return '';
  const scheme = address.indexOf('://');
  const from = scheme > 0 && scheme < 10 ? scheme + 3 : 0;
  let end = colon < 0 ? address.length : colon;
  let start = from;
  if (address.charCodeAt(start) === 91 /* [ */) {
    start++;
    if (address.charCodeAt(end - 1) === 93) end--;
  }
  return start === 0 && end === address.length ? address : address.slice(start, end);
}

/** The port of an address (as splitHostPort), without allocating a pair: for hot paths. */
export function addressPort(address: string): number {
  return portAfter(address, portColon(address));
}

function portAfter(address: string, colon: number): number {
  if (colon < 0 || address.length - colon > 6) return 0;
  let n = 0;
  for (let i = colon + 1; i < address.length; i++) {
    const c = address.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  return n <= 65535 ? n : 0;
}

/** True for dotted-quad IPv4 or anything holding a colon (IPv6); hostnames are false. */
export function looksLikeIp(host: string): boolean {
  if (host.indexOf(':') >= 0) return true;
  let dots = 0;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 46) dots++;
    else if (c < 48 || c > 57) return false;
  }
  return dots === 3;
}
