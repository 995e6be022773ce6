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

/** Go's zero values: the apiserver drops them from fields marked omitempty (`readOnly: false`, `{}`). */
function isZero(d: Json): boolean {
  if (d === null || d === false || d === 0 || d === '') return true;
  if (Array.isArray(d)) return d.length === 0;
  return typeof d === 'object' && Object.keys(d).length === 0;
}

function subset(d: Json, l: Json | undefined): boolean {
  if ((l === undefined || l === null) && isZero(d)) return true;
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

interface ManagedFieldsEntry {
  readonly manager?: string;
  readonly operation?: string;
  readonly fieldsV1?: Json;
}

/**
 * Map keys `manager` applied before that `desired` no longer holds (e.g. the service-CA
 * annotation once OpenShift's groups are gone): SSA removes such a field only when the operator
 * applies again, and containsDesired alone cannot see it. Read from the live object's
 * managedFields (fieldsV1: `f:<key>` per map key); list entries (`k:`, `v:`, `i:`) are not
 * descended, since lists are compared whole by containsDesired. Returns the first such path.
 */
export function droppedOwnedField(desired: unknown, live: unknown, manager: string): string | undefined {
  const entries = ((live as { metadata?: { managedFields?: ManagedFieldsEntry[] } } | undefined)?.metadata?.managedFields ?? []).filter(
    (e) => e.manager === manager && e.operation === 'Apply',
  );
  for (const e of entries) {
    const p = missingIn(e.fieldsV1, desired as Json, '');
    if (p !== undefined) return p;
  }
  return undefined;
}

function missingIn(fields: Json | undefined, d: Json | undefined, path: string): string | undefined {
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) return undefined;
  for (const [k, sub] of Object.entries(fields)) {
    if (!k.startsWith('f:')) continue; // '.', k:{..}, v:.., i:..
    const key = k.slice(2);
    const here = `${path}.${key}`;
    if (d === null || d === undefined || typeof d !== 'object' || Array.isArray(d)) return undefined;
    const child = d[key];
    if (child === undefined) return here;
    const deeper = missingIn(sub, child, here);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}
