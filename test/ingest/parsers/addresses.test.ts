import { describe, expect, it } from 'vitest';
import { addressHost, addressPort, splitHostPort } from '../../../ingest/parsers/addresses.ts';

describe('addresses', () => {
  it.each([
    ['10.0.0.1:8080', '10.0.0.1', 8080],
    ['[fe80::1]:443', 'fe80::1', 443],
    ['tcp://10.0.2.1:80', '10.0.2.1', 80],
    ['tcp://[::1]:80', '::1', 80],
    ['fe80::64d8:8aff:fe72:fc14', 'fe80::64d8:8aff:fe72:fc14', 0],
    ['[::1]', '::1', 0],
    ['host', 'host', 0],
    ['X.X.X.X:0', 'X.X.X.X', 0],
    ['REDACTED_IP1:7600', 'REDACTED_IP1', 7600],
    ['10.1.1.1:99999', '10.1.1.1', 0],
    ['-', '', 0],
    ['', '', 0],
  ])('%j → %j %i', (address, host, port) => {
    expect(splitHostPort(address)).toEqual({ host, port });
    expect([addressHost(address), addressPort(address)]).toEqual([host, port]);
  });
});
