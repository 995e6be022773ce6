// "No writes when nothing changed": before a server-side apply the operator compares the object it
// would apply with the live one. The apply is skipped when every field the operator sets already
// has that value live (fields the apiserver or others added are not the operator's business; SSA
// would leave them alone anyway). Written by hand: it is a recursive subset test over plain JSON,
// shorter than adapting a deep-diff library to "desired ⊆ live".

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Whether `live` already holds every field of `desired` with the same value. */
export function containsDesired(desired: unknown, live: unknown): boolean {
  return subset(desired as Json, live as Json);
}

function subset(d: Json, l: Json | undefined): boolean {
  if (d === null || typeof d !== 'object') return d === l || (typeof d === 'number' && typeof l === 'string' && String(d) === l);
  if (Array.isArray(d)) {
    // Lists are atomic or keyed by name in Kubernetes: compare element by element, same length.
    if (!Array.isArray(l) || l.length !== d.length) return false;
    return d.every((x, i) => subset(x, l[i]));
  }
  if (l === null || typeof l !== 'object' || Array.isArray(l)) return false;
  for (const [k, v] of Object.entries(d)) {
    if (!subset(v, l[k])) return false;
  }
  return true;
}
