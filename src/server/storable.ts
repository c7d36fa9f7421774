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
export const MAX_DEPTH = 1000;

/** Marks, on the walk's stack, the end of an object's children: it leaves the current path. */
class Leave {
  constructor(readonly value: object) {}
}

/** `value` as JSON.stringify sees it: after its `toJSON`, unboxed. */
function jsonView(value: unknown, key: string): unknown {
  if ((typeof value === 'object' && value !== null) || typeof value === 'bigint') {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') value = toJSON.call(value, key);
  }
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return value.valueOf();
  if (typeof value === 'object' && value instanceof BigInt) return value.valueOf();
  return value;
}

/** The problem that keeps `value` from being stored, in words; undefined when it can be stored. */
export function unstorable(value: unknown, isSession: (value: object) => boolean = () => false): string | undefined {
  try {
    return walk(value, isSession);
  } catch (err) {
    return `reading it threw (${err instanceof Error ? err.message : String(err)})`;
  }
}

function walk(root: unknown, isSession: (value: object) => boolean): string | undefined {
  const path = new Set<object>();
  const stack: unknown[] = [root];
  const depths: number[] = [0];
  const keys: string[] = [''];
  while (stack.length > 0) {
    const item = stack.pop();
    const depth = depths.pop()!;
    const key = keys.pop()!;
    if (item instanceof Leave) {
      path.delete(item.value);
      continue;
    }
    const value = jsonView(item, key);
    if (typeof value === 'bigint') return 'a BigInt (JSON has no BigInt)';
    if (typeof value !== 'object' || value === null) continue; // JSON writes or drops every other primitive, and functions
    if (isSession(value)) return 'the session itself';
    if (path.has(value)) return 'a cycle (a value that contains itself)';
    if (depth >= MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
    path.add(value);
    stack.push(new Leave(value));
    depths.push(depth);
    keys.push('');
    const record = value as Record<string, unknown>;
    const children = Array.isArray(value) ? Array.from({ length: value.length }, (_, i) => String(i)) : Object.keys(value);
    // (The order the children are looked at does not matter: any problem fails the whole value.)
    for (let i = children.length - 1; i >= 0; i--) {
      stack.push(record[children[i]]);
      depths.push(depth + 1);
      keys.push(children[i]);
    }
  }
  return undefined;
}
