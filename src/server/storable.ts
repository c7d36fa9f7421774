/**
 * Whether a session value can be stored: what JSON.stringify (ours and the store's) will do with it,
 * found without recursion. A client controls the shape of what it sends (a 29 KB frame can nest
 * 5,000 levels deep); recursing over it would let the client choose when the stack runs out, so
 * this walk keeps its own stack and stops at {@link MAX_DEPTH}. It follows JSON.stringify's steps:
 * own enumerable keys (getters run), `toJSON`, boxed primitives, arrays; it fails where
 * JSON.stringify would throw (BigInt, cycles, a throwing getter or `toJSON`) and where it could
 * run out of stack (too deep).
 */

/**
 * How deeply a session value may nest (objects and arrays inside each other). JSON.stringify and
 * JSON.parse recurse once per level; 3,000 levels already pass near the stack's end, so a third of
 * that leaves room for the store's own frames. Real session data nests a few levels.
 */
import { describeThrown } from '../errors.js';

export const MAX_DEPTH = 1000;

/** Whether JSON.stringify looks further into `value` (objects, and BigInts: their toJSON, or a throw). */
const deeper = (value: unknown): boolean => (typeof value === 'object' && value !== null) || typeof value === 'bigint';

/** `value` as JSON.stringify sees it: after its `toJSON`, unboxed. */
function jsonView(value: unknown): unknown {
  if (deeper(value)) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') value = toJSON.call(value, ''); // (the key it is under is not passed: Date and Buffer ignore it)
  }
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return value.valueOf();
  if (typeof value === 'object' && value instanceof BigInt) return value.valueOf();
  return value;
}

/** The problem that keeps `value` from being stored, in words; undefined when it can be stored. */
export function unstorable(value: unknown, isSession: (value: object) => boolean = () => false): string | undefined {
  // Most session values are primitives (a counter, a name): nothing to walk, nothing to allocate.
  if (!deeper(value)) return undefined;
  try {
    return walk(value, isSession);
  } catch (err) {
    return `reading it threw (${describeThrown(err)})`; // (what a getter throws may itself throw when shown)
  }
}

function walk(root: unknown, isSession: (value: object) => boolean): string | undefined {
  // The objects from the root to the current one: `path[d]` at depth d, also in `onPath` for the cycle check.
  const path: object[] = [];
  const onPath = new Set<object>();
  const stack: unknown[] = [root];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const item = stack.pop();
    const depth = depths.pop()!;
    while (path.length > depth) onPath.delete(path.pop()!); // back up to this value's parent
    const value = jsonView(item);
    if (typeof value === 'bigint') return 'a BigInt (JSON has no BigInt)';
    if (typeof value !== 'object' || value === null) continue; // JSON writes or drops every other primitive, and functions
    if (isSession(value)) return 'the session itself';
    if (onPath.has(value)) return 'a cycle (a value that contains itself)';
    if (depth >= MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
    path.push(value);
    onPath.add(value);
    // Leaves are looked at here, not pushed. (The order does not matter: any problem fails the whole value.)
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) if (deeper(value[i])) stack.push(value[i]), depths.push(depth + 1);
    } else {
      for (const key of Object.keys(value)) {
        const child = (value as Record<string, unknown>)[key];
        if (deeper(child)) stack.push(child), depths.push(depth + 1);
      }
    }
  }
  return undefined;
}

/** A plain object or array (what JSON.parse makes), with no `toJSON` of its own. */
function plainContainer(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) return proto === Array.prototype;
  return (proto === Object.prototype || proto === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

/** Both plain containers of one kind (two objects, or two arrays). */
const sameKind = (a: unknown, b: unknown): boolean => plainContainer(a) && plainContainer(b) && Array.isArray(a) === Array.isArray(b);

/**
 * Make a storable `value` hold what `parsed` (its JSON, read back) holds, in place: its plain objects
 * and arrays stay the same objects (references handlers keep stay the session's), the rest (a Date,
 * a Map, NaN...) is replaced by its JSON form, and what JSON drops (undefined, functions) goes. False
 * when `value` itself is no plain container (then the caller replaces it whole).
 */
export function takeJsonForm(value: unknown, parsed: unknown): boolean {
  if (!sameKind(value, parsed)) return false;
  const stack: Array<[Record<string, unknown>, Record<string, unknown>]> = [[value as Record<string, unknown>, parsed as Record<string, unknown>]];
  while (stack.length > 0) {
    const [into, from] = stack.pop()!;
    for (const key of Object.keys(into)) {
      const now = into[key];
      const want = from[key];
      if (!Object.hasOwn(from, key)) delete into[key];
      else if (sameKind(now, want)) stack.push([now as Record<string, unknown>, want as Record<string, unknown>]);
      else if (now !== want) into[key] = want;
    }
  }
  return true;
}

/**
 * Whether a storable `value` is already what reading its JSON back gives (plain objects and arrays
 * of JSON primitives): no `toJSON` (a Date, a Buffer), no boxed primitive, no class instance, Map or
 * Set, no undefined, function or symbol inside, no NaN or Infinity. Its own stack, as `unstorable`
 * (call it only on a value `unstorable` passed: no cycle, bounded depth).
 */
export function jsonShaped(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) return false;
      continue;
    }
    if (typeof item === 'undefined' || typeof item === 'function' || typeof item === 'symbol' || typeof item === 'bigint') return false;
    if (typeof item !== 'object' || item === null) continue;
    if (!plainContainer(item)) return false;
    if (Array.isArray(item)) for (let i = 0; i < item.length; i++) stack.push(item[i]);
    else for (const key of Object.keys(item)) stack.push(item[key]);
  }
  return true;
}
