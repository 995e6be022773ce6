// The CRDs of the five kinds, generated from their schemas (kinds.ts): OpenAPI v3 with defaults,
// enums, patterns, limits, CEL rules (singleton name, immutable fields, cross-field rules) and the
// status subresource. scripts/gen-operator-crds.mjs writes them to deploy/operator/crds/ and the
// build checks that the committed files match.
import { stringify } from 'yaml';
import { GROUP, KINDS, VERSION, type KindDescriptor } from './kinds.ts';
import type { CelRule, Schema } from './schema.ts';

export type JsonSchemaProps = { [k: string]: unknown };

function celList(s: Schema): CelRule[] {
  const rules: CelRule[] = [];
  if (s.immutable === true) rules.push({ rule: 'self == oldSelf', message: 'is immutable' });
  rules.push(...(s.cel ?? []));
  return rules;
}

function description(s: Schema): string {
  return s.deprecated === undefined ? s.description : `${s.description} Deprecated (0.2 shape): use ${s.deprecated}.`;
}

/** One schema → its OpenAPI v3 (structural) form. */
export function toOpenApi(s: Schema): JsonSchemaProps {
  const out: JsonSchemaProps = { description: description(s) };
  switch (s.type) {
    case 'string':
      out['type'] = 'string';
      if (s.enum !== undefined) out['enum'] = [...s.enum];
      if (s.pattern !== undefined) out['pattern'] = s.pattern;
      if (s.minLength !== undefined) out['minLength'] = s.minLength;
      if (s.maxLength !== undefined) out['maxLength'] = s.maxLength;
      if (s.default !== undefined) out['default'] = s.default;
      break;
    case 'integer':
      out['type'] = 'integer';
      out['format'] = 'int32';
      if (s.minimum !== undefined) out['minimum'] = s.minimum;
      if (s.maximum !== undefined) out['maximum'] = s.maximum;
      if (s.default !== undefined) out['default'] = s.default;
      break;
    case 'object': {
      out['type'] = 'object';
      const props: JsonSchemaProps = {};
      const required: string[] = [];
      for (const [k, f] of Object.entries(s.fields)) {
        props[k] = toOpenApi(f);
        if (f.required === true) required.push(k);
      }
      out['properties'] = props;
      if (required.length > 0) out['required'] = required;
      if (s.defaultEmpty === true) out['default'] = {};
      break;
    }
    case 'array':
      out['type'] = 'array';
      out['items'] = toOpenApi(s.items);
      if (s.minItems !== undefined) out['minItems'] = s.minItems;
      if (s.maxItems !== undefined) out['maxItems'] = s.maxItems;
      if (s.listMapKeys !== undefined) {
        out['x-kubernetes-list-type'] = 'map';
        out['x-kubernetes-list-map-keys'] = [...s.listMapKeys];
      }
      break;
    case 'map':
      out['type'] = 'object';
      out['additionalProperties'] = { type: 'string' };
      if (s.maxProperties !== undefined) out['maxProperties'] = s.maxProperties;
      break;
    case 'raw':
      out['type'] = 'object';
      out['x-kubernetes-preserve-unknown-fields'] = true;
      break;
  }
  const rules = celList(s);
  if (rules.length > 0) out['x-kubernetes-validations'] = rules.map(celJson);
  return out;
}

function celJson(r: CelRule): JsonSchemaProps {
  return {
    rule: r.rule,
    message: r.message,
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    ...(r.fieldPath === undefined ? {} : { fieldPath: r.fieldPath }),
  };
}

export interface CustomResourceDefinition {
  readonly apiVersion: 'apiextensions.k8s.io/v1';
  readonly kind: 'CustomResourceDefinition';
  readonly metadata: { readonly name: string; readonly labels: Record<string, string> };
  readonly spec: JsonSchemaProps;
}

/**
 * The CRD of one kind. `group` other than operator.openshift.io gives a copy with the same schema
 * under another group (tests on a shared cluster use one so their CRs collide with nobody's).
 */
export function crdFor(d: KindDescriptor, group: string = GROUP): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${d.plural}.${group}`,
      labels: { 'app.kubernetes.io/part-of': 'zero-trust-workload-identity-manager', 'app.kubernetes.io/managed-by': 'zero-trust-workload-identity-manager' },
    },
    spec: {
      group,
      names: { kind: d.kind, listKind: d.listKind, plural: d.plural, singular: d.singular },
      scope: 'Cluster',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              description: d.description,
              type: 'object',
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion of this object.' },
                kind: { type: 'string', description: 'Kind of this object.' },
                metadata: { type: 'object' },
                spec: { ...toOpenApi(d.spec), ...(d.specRequired ? {} : { default: {} }) },
                status: toOpenApi(d.status),
              },
              ...(d.specRequired ? { required: ['spec'] } : {}),
              'x-kubernetes-validations': d.rootCel.map(celJson),
            },
          },
        },
      ],
    },
  };
}

export const ALL_CRDS: readonly CustomResourceDefinition[] = Object.values(KINDS).map((d) => crdFor(d));

/** The file name of a CRD in deploy/operator/crds/ (`<group>_<plural>.yaml`, as kubebuilder names them). */
export function crdFileName(c: CustomResourceDefinition): string {
  const [plural] = c.metadata.name.split('.');
  return `${String(c.spec['group'])}_${plural ?? c.metadata.name}.yaml`;
}

const HEADER = '# Generated by scripts/gen-operator-crds.mjs from packages/operator/src/api/kinds.ts. Do not edit.\n';

/** The YAML text of a CRD file. */
export function crdYaml(c: CustomResourceDefinition): string {
  return HEADER + stringify(c, { lineWidth: 0, aliasDuplicateObjects: false });
}
