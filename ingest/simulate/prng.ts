// A small seeded PRNG (mulberry32) and the draws the scenario generator needs. Never Math.random:
// the same seed gives the same trace, and every one-second slot has its own stream so a trace can
// be generated in any chunks and still come out identical.

/** A seeded stream of uniform numbers in [0, 1) and the draws built on it. */
export interface Random {
  next(): number;
  /** Integer in [min, max]. */
  int(min: number, max: number): number;
  /** Uniform real in [min, max). */
  range(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
  /** Poisson-distributed count with mean `lambda`. */
  poisson(lambda: number): number;
  /** Log-normal draw with the given median and log-space sigma. */
  logNormal(median: number, sigma: number): number;
  /** Fisher–Yates shuffle of a copy. */
  shuffle<T>(items: readonly T[]): T[];
  /** Hex string of `chars` characters. */
  hex(chars: number): string;
  /** A version-4-shaped UUID. */
  uuid(): string;
}

/** Mixes integers into one 32-bit seed (splitmix-style), so (seed, slot, stream) give independent streams. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h ^ Math.floor(part / 4294967296), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Creates a mulberry32 stream from a 32-bit seed. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (): number => {
    const u = Math.max(next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  const random: Random = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    range: (min, max) => min + next() * (max - min),
    pick: (items) => items[Math.floor(next() * items.length)] as (typeof items)[number],
    chance: (p) => next() < p,
    poisson(lambda) {
      if (lambda <= 0) return 0;
      if (lambda > 50) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal()));
      const limit = Math.exp(-lambda);
      let k = 0;
      let p = next();
      while (p > limit) {
        k++;
        p *= next();
      }
      return k;
    },
    logNormal: (median, sigma) => median * Math.exp(sigma * normal()),
    shuffle(items) {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [copy[i], copy[j]] = [copy[j] as (typeof copy)[number], copy[i] as (typeof copy)[number]];
      }
      return copy;
    },
    hex(chars) {
      let out = '';
      while (out.length < chars) out += Math.floor(next() * 4294967296).toString(16).padStart(8, '0');
      return out.slice(0, chars);
    },
    uuid() {
      const h = random.hex(32);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[Math.floor(next() * 4)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    },
  };
  return random;
}
