// One helper for the schemas of core/ and api/: a string enum written `as const` once becomes a
// JSON-schema union of literals, so the TypeScript type derived from the schema is that union.
import { Type, type SchemaOptions, type TLiteral, type TUnion } from '@sinclair/typebox';

/** `literalUnion(['allow', 'deny'])` → a schema whose static type is `'allow' | 'deny'`. */
export function literalUnion<T extends string>(values: readonly T[], options: SchemaOptions = {}): TUnion<Array<TLiteral<T>>> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  );
}
