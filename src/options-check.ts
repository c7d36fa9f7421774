/**
 * A misspelled option must fail loudly, not be ignored. `unknownOption` finds the first key of an
 * options object that is not an option and words the error, naming the nearest option; the caller
 * throws it as `SessionOptionsError` (the client takes that class from its core entry, so every
 * part throws the same class). Shared by the server (`sessions()`, `enable()`) and the client's
 * option check (`connectWithSession()`, `tickets()`).
 */

/** Levenshtein distance, case-insensitive (option names are short). */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const row = [...Array(b.length + 1).keys()];
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + +(a[i - 1] !== b[j - 1]));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The message for the first key of `options` that `known` does not hold, naming the nearest known
 * key when one is close, e.g. `socket.io-sessions: sessions() has no option "storeTimout" (did you
 * mean "storeTimeout"?)`; undefined when every key is known.
 */
export function unknownOption(options: object, known: readonly string[], where: string): string | undefined {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    let nearest = '';
    let best = Math.max(2, key.length / 3);
    for (const candidate of known) {
      const d = distance(key, candidate);
      // Strictly nearer than the one before: the first of equally near keys wins.
      if (d <= best) [nearest, best] = [candidate, d - 0.5];
    }
    return `socket.io-sessions: ${where} has no option "${key}"${nearest && ` (did you mean "${nearest}"?)`}`;
  }
}
