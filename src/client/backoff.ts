/**
 * Full-jitter exponential backoff: a random delay in [0, min(max, min * 2^step)], never below `min / 2`
 * so a fleet of clients that lost the same server does not come back in one burst nor all at once.
 */
export function backoff(step: number, min: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, min * 2 ** step); // (step >= 0: retries counted from 0)
  return Math.round(Math.max(min / 2, ceiling * random()));
}
