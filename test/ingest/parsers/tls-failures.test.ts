import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeTlsFailure } from '../../../ingest/parsers/tls-failures.ts';

describe('normalizeTlsFailure', () => {
  it.each([
    ['TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end', 'CERTIFICATE_VERIFY_FAILED'],
    ['TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED', 'CERTIFICATE_VERIFY_FAILED'],
    ['TLS error: 268436501:SSL routines:OPENSSL_internal:SSLV3_ALERT_CERTIFICATE_EXPIRED', 'SSLV3_ALERT_CERTIFICATE_EXPIRED'],
    ['TLS_error:|268436504:SSL_routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA:TLS_error_end', 'TLSV1_ALERT_UNKNOWN_CA'],
    ['TLS_error:|268435603:SSL_routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE:TLS_error_end', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
    ['peer did not return a certificate', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
    ['SSLV3_ALERT_HANDSHAKE_FAILURE', 'SSLV3_ALERT_HANDSHAKE_FAILURE'],
    ['TLS error: Secret is not supplied by SDS', 'SECRET_NOT_SUPPLIED_BY_SDS'],
    ['received fatal alert: UnknownCA', 'TLSV1_ALERT_UNKNOWN_CA'],
    ['-', ''],
    ['', ''],
    ['via_upstream', ''],
    ['upstream_reset_before_response_started{connection_termination}', ''],
    ['connection refused', ''],
  ])('%j → %j', (text, reason) => {
    expect(normalizeTlsFailure(text)).toBe(reason);
  });

  it('always answers an upper-snake constant or nothing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 40 }), (prefix, reason) => {
        const result = normalizeTlsFailure(`${prefix}OPENSSL_internal:${reason}`);
        expect(result).toMatch(/^[A-Z0-9_]{0,64}$/);
      }),
    );
  });
});
