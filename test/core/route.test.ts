// Route templates: identifiers become `{id}`, names stay, queries and fragments go, output bounded.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ROUTE_CHARS, ROUTE_ID, isIdSegment, templateRoute } from '../../core/route.ts';

describe('templateRoute', () => {
  it.each([
    ['/api/v1/users/1234?x=1', '/api/v1/users/{id}'],
    ['/status/418', '/status/{id}'],
    ['/api/v1/orders/9f1c2e4a-1b2c-4d3e-8f9a-0b1c2d3e4f5a/items', '/api/v1/orders/{id}/items'],
    ['/x/9F1C2E4A-1B2C-4D3E-8F9A-0B1C2D3E4F5A', '/x/{id}'],
    ['/blobs/0123456789abcdef01', '/blobs/{id}'],
    ['/commits/4b825dc642cb6eb9a060e54bf8d69288fbee4904', '/commits/{id}'],
    // Letters only (even hex ones) read as a name: ids of that shape are rare, words are not.
    ['/colors/deadbeefcafe', '/colors/deadbeefcafe'],
    ['/tokens/W3sibCI6InN5cy9jYXRhbG9nIiwicyI6NDA3MX1d', '/tokens/{id}'],
    ['/ulid/01ARZ3NDEKTSV4RRFFQ69G5FAV', '/ulid/{id}'],
    ['/users/bob@example.com/keys', '/users/{id}/keys'],
    ['/reports/2024-05-01', '/reports/{id}'],
    ['/123/456', '/{id}/{id}'],
    ['/sapi/tenant/v3.0/system/brand/categories?brand_category_ids=1006592999063017728', '/sapi/tenant/v3.0/system/brand/categories'],
    ['/practices.Practices/Get', '/practices.Practices/Get'],
    ['/api/v1/products', '/api/v1/products'],
    ['/v1.2/x', '/v1.2/x'],
    ['/salary/bob', '/salary/bob'],
    ['/a/b#section-2', '/a/b'],
    ['/a//b/', '/a//b/'],
    ['http://10.0.0.1:9990/metrics?x=1', '/metrics'],
    ['https://host', '/'],
    ['/', '/'],
    ['', ''],
    ['-', ''],
    ['?only=query', ''],
  ])('%j → %j', (path, route) => {
    expect(templateRoute(path)).toBe(route);
  });

  it('returns the same string object when nothing changes (no copy on the hot path)', () => {
    const path = '/api/v1/products/reviews';
    expect(Object.is(templateRoute(path), path)).toBe(true);
  });

  it('bounds its output and is idempotent', () => {
    expect(templateRoute(`/${'segment/'.repeat(100)}`).length).toBeLessThanOrEqual(MAX_ROUTE_CHARS);
    fc.assert(
      fc.property(fc.webPath(), fc.array(fc.oneof(fc.nat(), fc.uuid(), fc.constantFrom('users', 'v1', 'orders')), { maxLength: 6 }), (base, parts) => {
        const path = `${base}/${parts.join('/')}`;
        const route = templateRoute(path);
        expect(route.length).toBeLessThanOrEqual(MAX_ROUTE_CHARS);
        expect(templateRoute(route)).toBe(route);
        expect(route.includes('?')).toBe(false);
      }),
    );
  });

  it('agrees with a plain split-and-join reading of the same rules', () => {
    // The reference: cut scheme/host, query and fragment, then judge every segment on its own.
    const reference = (path: string): string => {
      if (path === '' || path === '-') return '';
      let rest = path;
      if (!rest.startsWith('/')) {
        const scheme = rest.indexOf('://');
        if (scheme > 0 && scheme < 16) {
          const slash = rest.indexOf('/', scheme + 3);
          if (slash < 0) return '/';
          rest = rest.slice(slash);
        }
      }
      const cut = rest.search(/[?#]/);
      if (cut >= 0) rest = rest.slice(0, cut);
      const route = rest.split('/').map((segment) => (isIdSegment(segment, 0, segment.length) ? ROUTE_ID : segment)).join('/');
      return route.length <= MAX_ROUTE_CHARS ? route : route.slice(0, MAX_ROUTE_CHARS - 2) + '/…';
    };
    const unit = fc.constantFrom(...'/ab1?#@-_.:%Ff0123456789xyzAZ~+é'.split(''));
    const path = fc.oneof(fc.string({ unit, maxLength: 80 }), fc.string({ maxLength: 120 }), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.webPath());
    fc.assert(
      fc.property(path, (p) => {
        expect(templateRoute(p)).toBe(reference(p));
      }),
      { numRuns: 5000 },
    );
  });

  it('has low cardinality over generated ids', () => {
    const routes = new Set<string>();
    fc.assert(
      fc.property(fc.nat(), fc.uuid(), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 24, maxLength: 24 }), (n, uuid, hex) => {
        routes.add(templateRoute(`/api/users/${n}/orders/${uuid}/blobs/${hex}?page=${n}`));
      }),
    );
    // 24 hex chars may happen to be all digits; either way it is an id.
    expect([...routes]).toEqual([`/api/users/${ROUTE_ID}/orders/${ROUTE_ID}/blobs/${ROUTE_ID}`]);
  });
});

describe('isIdSegment', () => {
  const check = (segment: string): boolean => isIdSegment(segment, 0, segment.length);
  it.each([
    ['123', true],
    ['v1', false],
    ['users', false],
    ['abcdef', false],
    ['abc123', false],
    ['a1b2c3d4e5f6', true],
    ['Abc123Def456Ghi7', true],
    // A UUID passes as a token; one without a digit still is a UUID.
    ['9f1c2e4a-1b2c-4d3e-8f9a-0b1c2d3e4f5a', true],
    ['abcdefab-abcd-abcd-abcd-abcdefabcdef', true],
    ['short-name', false],
    ['', false],
  ])('%j → %s', (segment, id) => {
    expect(check(segment)).toBe(id);
  });
});
