/**
 * Kubernetes label selectors (metav1.LabelSelector) as ClusterSPIFFEID's podSelector and
 * namespaceSelector use them: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist),
 * ANDed. Validation follows metav1.LabelSelectorAsSelector: label keys are qualified names,
 * values valid label values, In/NotIn need values, Exists/DoesNotExist take none, any other
 * operator is an error. A missing (nil) selector matches everything, as the controller manager
 * treats it; so does an empty one.
 */
import { RegistrarError } from './errors.ts';

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: LabelSelectorOperator;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

const OPERATORS: ReadonlySet<string> = new Set<LabelSelectorOperator>(['In', 'NotIn', 'Exists', 'DoesNotExist']);
const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a qualified name (`[prefix/]name`), or undefined when it is. */
export function labelKeyError(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return 'a qualified name must have at most one "/"';
  const name = parts[parts.length - 1] as string;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    if (prefix.length === 0) return 'prefix part must be non-empty';
    if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) return 'prefix part must be a lowercase RFC 1123 subdomain';
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!NAME.test(name)) return 'name part must consist of alphanumeric characters, "-", "_" or ".", and must start and end with an alphanumeric character';
  return undefined;
}

/** Why `value` is not a valid label value, or undefined when it is (empty is valid). */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (value !== '' && !NAME.test(value))
    return 'must consist of alphanumeric characters, "-", "_" or ".", and must start and end with an alphanumeric character';
  return undefined;
}

function fail(field: string, message: string): RegistrarError {
  return new RegistrarError('label_selector', `${field}: ${message}`, { field });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a selector from JSON; throws RegistrarError `label_selector` naming the field path. */
export function parseLabelSelector(sel: unknown, field = 'selector'): LabelSelector {
  if (!isRecord(sel)) throw fail(field, 'must be an object');
  for (const k of Object.keys(sel)) {
    if (k !== 'matchLabels' && k !== 'matchExpressions') throw fail(`${field}.${k}`, 'unknown field');
  }
  const out: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] } = {};
  if (sel['matchLabels'] !== undefined && sel['matchLabels'] !== null) {
    const ml = sel['matchLabels'];
    if (!isRecord(ml)) throw fail(`${field}.matchLabels`, 'must be an object of strings');
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(ml)) {
      const f = `${field}.matchLabels[${JSON.stringify(k)}]`;
      if (typeof v !== 'string') throw fail(f, 'must be a string');
      const ke = labelKeyError(k);
      if (ke !== undefined) throw fail(f, `invalid label key ${JSON.stringify(k)}: ${ke}`);
      const ve = labelValueError(v);
      if (ve !== undefined) throw fail(f, `invalid label value ${JSON.stringify(v)}: ${ve}`);
      labels[k] = v;
    }
    out.matchLabels = labels;
  }
  if (sel['matchExpressions'] !== undefined && sel['matchExpressions'] !== null) {
    const me = sel['matchExpressions'];
    if (!Array.isArray(me)) throw fail(`${field}.matchExpressions`, 'must be a list');
    out.matchExpressions = me.map((e: unknown, i) => parseRequirement(e, `${field}.matchExpressions[${i}]`));
  }
  return out;
}

function parseRequirement(e: unknown, field: string): LabelSelectorRequirement {
  if (!isRecord(e)) throw fail(field, 'must be an object');
  const { key, operator, values } = e;
  if (typeof key !== 'string') throw fail(`${field}.key`, 'is required');
  const ke = labelKeyError(key);
  if (ke !== undefined) throw fail(`${field}.key`, `invalid label key ${JSON.stringify(key)}: ${ke}`);
  if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
    throw fail(`${field}.operator`, `${JSON.stringify(operator ?? '')} is not a valid label selector operator`);
  }
  const op = operator as LabelSelectorOperator;
  if (values !== undefined && values !== null && (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))) {
    throw fail(`${field}.values`, 'must be a list of strings');
  }
  const vals = (values ?? []) as string[];
  if ((op === 'In' || op === 'NotIn') && vals.length === 0) {
    throw fail(`${field}.values`, `for 'in', 'notin' operators, values set can't be empty`);
  }
  if ((op === 'Exists' || op === 'DoesNotExist') && vals.length > 0) {
    throw fail(`${field}.values`, `values set must be empty for exists and does not exist`);
  }
  vals.forEach((v, i) => {
    const ve = labelValueError(v);
    if (ve !== undefined) throw fail(`${field}.values[${i}]`, `invalid label value ${JSON.stringify(v)}: ${ve}`);
  });
  return vals.length > 0 ? { key, operator: op, values: vals } : { key, operator: op };
}

function matchesRequirement(r: LabelSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && (r.values ?? []).includes(labels[r.key] as string);
    case 'NotIn':
      return !has || !(r.values ?? []).includes(labels[r.key] as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** Whether `labels` satisfy the selector; undefined (nil) and empty selectors match everything. */
export function matchesLabelSelector(sel: LabelSelector | undefined, labels: Readonly<Record<string, string>> | undefined): boolean {
  if (sel === undefined) return true;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (!Object.hasOwn(l, k) || l[k] !== v) return false;
  }
  return (sel.matchExpressions ?? []).every((r) => matchesRequirement(r, l));
}
