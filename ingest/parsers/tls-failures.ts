// TLS handshake failure texts (OpenSSL/BoringSSL reasons, Go and Envoy phrases) normalized to one
// short reason constant such as `CERTIFICATE_VERIFY_FAILED`.

/** Reasons from outside OpenSSL that still mean "the TLS handshake could not happen". */
const TLS_PHRASES: ReadonlyArray<readonly [string, string]> = [
  ['peer did not return a certificate', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
  ['secret is not supplied by sds', 'SECRET_NOT_SUPPLIED_BY_SDS'],
  // Envoy's certificate validator states the verification failure in prose.
  ['verify cert failed', 'CERTIFICATE_VERIFY_FAILED'],
  ['certificate verify failed', 'CERTIFICATE_VERIFY_FAILED'],
  // rustls wording (ztunnel): map onto the OpenSSL reasons a reader already knows.
  ['peer sent no certificates', 'PEER_DID_NOT_RETURN_A_CERTIFICATE'],
  ['invalid peer certificate: expired', 'CERTIFICATE_EXPIRED'],
  ['invalid peer certificate: unknownissuer', 'CERTIFICATE_VERIFY_FAILED'],
  ['invalid peer certificate: notvalidforname', 'CERTIFICATE_VERIFY_FAILED'],
  ['invalid peer certificate: badsignature', 'CERTIFICATE_VERIFY_FAILED'],
  ['received fatal alert: unknownca', 'TLSV1_ALERT_UNKNOWN_CA'],
  ['received fatal alert: certificateexpired', 'SSLV3_ALERT_CERTIFICATE_EXPIRED'],
  ['received fatal alert: badcertificate', 'SSLV3_ALERT_BAD_CERTIFICATE'],
  ['received fatal alert: certificaterequired', 'TLSV13_ALERT_CERTIFICATE_REQUIRED'],
  ['received fatal alert: handshakefailure', 'SSLV3_ALERT_HANDSHAKE_FAILURE'],
];

const OPENSSL_MARK = 'OPENSSL_internal:';
const MAX_REASON_CHARS = 64;

/**
 * The OpenSSL/BoringSSL reason constant in an Envoy transport failure, in upper snake case:
 * both `TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end`
 * and `TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED` give
 * `CERTIFICATE_VERIFY_FAILED`; a bare constant is returned as is; `-`/'' and texts without a TLS
 * failure give ''. When several errors are queued, the first one wins (it is the root cause).
 */
export function normalizeTlsFailure(text: string): string {
  if (text.length < 3 || text === '-') return '';
  const mark = text.indexOf(OPENSSL_MARK);
  if (mark >= 0) return readReasonConstant(text, mark + OPENSSL_MARK.length);
  if (isReasonConstant(text)) return text;
  // Lower-casing is only paid for texts that already talk about TLS or certificates.
  const lower = text.length <= 2048 ? text.toLowerCase() : text.slice(0, 2048).toLowerCase();
  if (lower.indexOf('tls') < 0 && lower.indexOf('cert') < 0 && lower.indexOf('sds') < 0 && lower.indexOf('alert') < 0) return '';
  for (const [phrase, reason] of TLS_PHRASES) {
    if (lower.indexOf(phrase) >= 0) return reason;
  }
  return '';
}

/** Reads `[A-Za-z0-9_ ]` from `at` up to `:`/`}`/end and upper-snakes it (`Connection reset by peer`). */
function readReasonConstant(text: string, at: number): string {
  let end = at;
  const limit = Math.min(text.length, at + MAX_REASON_CHARS);
  while (end < limit) {
    const c = text.charCodeAt(end);
    const word = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 32;
    if (!word) break;
    end++;
  }
  let reason = text.slice(at, end).trim();
  // `CLIENTHELLO_TLSEXT 268435646:SSL routines:…` queues a second error after a space.
  const space = reason.indexOf(' ');
  if (space > 0 && isReasonConstant(reason.slice(0, space))) reason = reason.slice(0, space);
  return reason.replace(/ +/g, '_').toUpperCase();
}

function isReasonConstant(text: string): boolean {
  if (text.length < 5 || text.length > MAX_REASON_CHARS || text.indexOf('_') < 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95)) return false;
  }
  return true;
}
