// The registrar's Go text/template evaluator against Go's own text/template (test/interop/go/
// gotemplate, data shaped like spire-controller-manager's templateData): random templates over
// the constructs ClusterSPIFFEIDs use, random pods; Go's parse errors must be ours, its
// execution errors ours, its output ours byte for byte. Values Go would print as pointer
// addresses (pointer fields passed to functions) are left out: the registrar's model has no
// addresses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import fc from 'fast-check';
import { GoMap, goStruct, isRegistrarError, parseTemplate, type GoValue } from '@ztwim/registrar';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';

interface Pod {
  name: string;
  namespace: string;
  uid: string;
  generation: number;
  labels: Record<string, string> | null;
  annotations: Record<string, string> | null;
  sa: string;
  hostNetwork: boolean;
  priority: number | null;
  containers: Array<{ Name: string; Image: string }>;
}

const word = fc.constantFrom('web', 'db', 'a b', 'x-1', '', 'ünï', '"q"', 'back\\slash', '%d');
const labels = fc.option(fc.dictionary(fc.constantFrom('app', 'tier', 'app.kubernetes.io/name', 'zone'), word, { maxKeys: 4 }), { nil: null });
const pod: fc.Arbitrary<Pod> = fc.record({
  name: word,
  namespace: word,
  uid: fc.uuid(),
  generation: fc.integer({ min: 0, max: 5 }),
  labels,
  annotations: labels,
  sa: word,
  hostNetwork: fc.boolean(),
  // Non-zero: the registrar's model keeps a pointer's value, not the pointer, so a pointer to 0
  // would be false in `if` (Go: a non-nil pointer is true).
  priority: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: null }),
  containers: fc.array(fc.record({ Name: word, Image: word }), { maxLength: 3 }),
});

// Operands safe to hand to functions (no pointers), and those only printed or tested directly.
const operand = fc.constantFrom(
  '.TrustDomain',
  '.ClusterName',
  '.PodMeta.Name',
  '.PodMeta.Namespace',
  '.PodMeta.UID',
  '.PodMeta.Labels.app',
  '.PodMeta.Labels.none',
  '.PodMeta.Labels',
  '.PodMeta.Annotations',
  '.PodSpec.ServiceAccountName',
  '.PodSpec.HostNetwork',
  '.PodSpec.Containers',
  '.NodeSpec.PodCIDR',
  '.NodeMeta.Name',
  '(index .PodMeta.Labels "app.kubernetes.io/name")',
  '(index .PodMeta.Labels "none")',
  '(index .PodSpec.Containers 0)',
  '(index .PodSpec.Containers 0).Image',
  '(len .PodSpec.Containers)',
  '"str"',
  '"a b"',
  '`raw`',
  '7',
  '-3',
  '0',
  '1.5',
  '1e6',
  "'x'",
  'true',
  'false',
  '.PodMeta.Nmae',
  '.PodMeta.Labels.none.deeper',
);
const printedOnly = fc.constantFrom('.PodSpec.Priority', '.PodSpec.RuntimeClassName', '.PodMeta.Generation', '.PodMeta', '.NodeSpec');
const format = fc
  .array(fc.constantFrom('%s', '%d', '%v', '%q', '%x', '%X', '%5s', '%05s', '%-3d', '%03d', '%-4v', '%%', 'x', '%t', '%c', '%.2s', '-', '/'), {
    minLength: 1,
    maxLength: 4,
  })
  .map((p) => JSON.stringify(p.join('')));
const expr: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: operand },
  { weight: 1, arbitrary: printedOnly },
  fc.tuple(format, fc.array(operand, { maxLength: 3 })).map(([f, a]) => ['printf', f, ...a].join(' ')),
  fc.tuple(operand, format).map(([o, f]) => `${o} | printf ${f}`),
  fc.tuple(fc.constantFrom('eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'print', 'index'), operand, operand).map((p) => p.join(' ')),
  fc.tuple(fc.constantFrom('len', 'not', 'html', 'js', 'urlquery', 'print', 'println'), operand).map((p) => p.join(' ')),
);
const text = fc.constantFrom('spiffe://', '/ns/', ' ', '\n  ', '.', 'x', '');
const node: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: text },
  { weight: 6, arbitrary: expr.map((e) => `{{ ${e} }}`) },
  expr.map((e) => `{{- ${e} -}}`),
  fc.tuple(expr, expr, expr).map(([c, a, b]) => `{{ if ${c} }}{{ ${a} }}{{ else }}{{ ${b} }}{{ end }}`),
  fc.tuple(expr, expr).map(([c, b]) => `{{ with ${c} }}{{ . }}{{ else }}{{ ${b} }}{{ end }}`),
  fc.constantFrom('{{ range $i, $c := .PodSpec.Containers }}{{ $i }}={{ $c.Name }};{{ end }}', '{{ range .PodMeta.Labels }}[{{ . }}]{{ else }}none{{ end }}'),
  expr.map((e) => `{{ $v := ${e} }}<{{ $v }}>`),
  fc.constantFrom(
    '{{',
    '}}',
    '{{ end }}',
    '{{ else }}',
    '{{ foo }}',
    '{{ .A ) }}',
    '{{ "unterminated }}',
    '{{/* c */}}',
    '{{ if true }}',
    '{{ $u }}',
    '{{ | printf "x" }}',
    '{{ 3 | 4 }}',
  ),
);
const template = fc.array(node, { minLength: 1, maxLength: 4 }).map((n) => n.join(''));

function goData(p: Pod): unknown {
  const meta = { Name: p.name, Namespace: p.namespace, UID: p.uid, Generation: p.generation, Labels: p.labels, Annotations: p.annotations };
  return {
    TrustDomain: 'example.org',
    ClusterName: 'demo',
    ClusterDomain: 'cluster.local',
    PodMeta: meta,
    // An empty slice is a nil one (Kubernetes JSON omits empty lists).
    PodSpec: {
      ServiceAccountName: p.sa,
      NodeName: 'node-1',
      HostNetwork: p.hostNetwork,
      Priority: p.priority,
      RuntimeClassName: null,
      Containers: p.containers.length === 0 ? null : p.containers,
    },
    NodeMeta: { Name: 'node-1', Namespace: '', UID: 'n-1', Generation: 0, Labels: { zone: 'a' }, Annotations: null },
    NodeSpec: { PodCIDR: '10.0.0.0/24', ProviderID: '' },
  };
}

function tsData(p: Pod) {
  const map = (m: Record<string, string> | null): GoMap => new GoMap(new Map(Object.entries(m ?? {})), 'map[string]string', '', m === null);
  const meta = (name: string, ns: string, uid: string, gen: number, l: Record<string, string> | null, a: Record<string, string> | null) =>
    goStruct('*main.ObjectMeta', { Name: name, Namespace: ns, UID: uid, Generation: gen, Labels: map(l), Annotations: map(a) });
  const containers: GoValue[] = p.containers.map((c) => goStruct('main.Container', { Name: c.Name, Image: c.Image }));
  return goStruct('*main.templateData', {
    TrustDomain: 'example.org',
    ClusterName: 'demo',
    ClusterDomain: 'cluster.local',
    PodMeta: meta(p.name, p.namespace, p.uid, p.generation, p.labels, p.annotations),
    PodSpec: goStruct('*main.PodSpec', {
      ServiceAccountName: p.sa,
      NodeName: 'node-1',
      HostNetwork: p.hostNetwork,
      Priority: p.priority,
      RuntimeClassName: null,
      Containers: containers,
    }),
    NodeMeta: meta('node-1', '', 'n-1', 0, { zone: 'a' }, null),
    NodeSpec: goStruct('*main.NodeSpec', { PodCIDR: '10.0.0.0/24', ProviderID: '' }),
  });
}

interface GoAnswer {
  parse_error: boolean;
  exec_error: boolean;
  out: string;
  error: string;
}

function ours(t: string, p: Pod): GoAnswer {
  try {
    return { parse_error: false, exec_error: false, out: parseTemplate(t).render(tsData(p)), error: '' };
  } catch (e) {
    if (isRegistrarError(e, 'template_parse')) return { parse_error: true, exec_error: false, out: '', error: e.message };
    if (isRegistrarError(e, 'template_render')) return { parse_error: false, exec_error: true, out: '', error: e.message };
    throw e;
  }
}

it('random templates on random pods: same parse errors, execution errors and output as Go text/template', () => {
  const bin = goBuild(join(INTEROP_DIR, 'go'), './gotemplate');
  const cases = fc.sample(fc.tuple(template, pod), 3000);
  const r = spawnSync(bin, [], {
    input: cases.map(([t, p]) => JSON.stringify({ template: t, data: goData(p) })).join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as GoAnswer);
  assert.equal(answers.length, cases.length);
  let outputs = 0;
  cases.forEach(([t, p], i) => {
    const go = answers[i] as GoAnswer;
    const ts = ours(t, p);
    const what = `template ${JSON.stringify(t)} on ${JSON.stringify(goData(p))}\n go: ${JSON.stringify(go)}\n ts: ${JSON.stringify(ts)}`;
    assert.equal(ts.parse_error, go.parse_error, `parse error differs: ${what}`);
    assert.equal(ts.exec_error, go.exec_error, `execution error differs: ${what}`);
    // Slice element types are not modelled (an empty slice has none): fmt's type names of slices
    // in %!verb(...) and %!(EXTRA ...) are compared as one.
    const sliceTypes = (s: string): string => s.replace(/\[\](?:main\.\w+|string|interface \{\})=/g, '[]T=');
    assert.equal(sliceTypes(ts.out), sliceTypes(go.out), `output differs: ${what}`);
    if (!go.parse_error && !go.exec_error) outputs++;
  });
  // The generator must reach every outcome, mostly successful output.
  assert.ok(outputs > cases.length / 4, `only ${outputs} of ${cases.length} cases rendered`);
  assert.ok(answers.some((a) => a.parse_error) && answers.some((a) => a.exec_error));
});
