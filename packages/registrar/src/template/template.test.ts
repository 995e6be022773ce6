import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isRegistrarError } from '../errors.ts';
import { goQuote } from './printf.ts';
import { parseTemplate, renderSpiffeId } from './template.ts';
import { templateDataFor, type KubeObjectJson } from './template-data.ts';
import { GoMap, goStruct } from './values.ts';

const CTX = { trustDomain: 'example.org', clusterName: 'demo-cluster', clusterDomain: 'cluster.local' };

const POD: KubeObjectJson = {
  metadata: {
    name: 'web-7d9f8-abcde',
    namespace: 'shop',
    uid: '3f1c2a9e-0b6d-4c55-9a1e-2d8f00c0ffee',
    creationTimestamp: '2026-12-07T01:02:03Z',
    labels: { app: 'web', 'app.kubernetes.io/name': 'storefront', 'spiffe.io/spire-managed-identity': 'true' },
    annotations: { 'example.com/role': 'frontend' },
  },
  spec: {
    serviceAccountName: 'web-sa',
    nodeName: 'node-1',
    hostNetwork: true,
    priority: 1000,
    containers: [
      { name: 'app', image: 'registry.local/web:1.2', ports: [{ containerPort: 8443, protocol: 'TCP' }] },
      { name: 'sidecar', image: 'registry.local/proxy:3' },
    ],
  },
};
const NODE: KubeObjectJson = {
  metadata: { name: 'node-1', uid: 'a1b2c3d4-node', labels: { 'topology.kubernetes.io/zone': 'zone-a' } },
  spec: { podCIDR: '10.0.0.0/24', providerID: 'kind://docker/node-1' },
};
const DATA = templateDataFor(CTX, POD, NODE);

const render = (t: string): string => parseTemplate(t).render(DATA);

describe('templates from SPIRE docs, the helm chart and ZTWIM', () => {
  const cases: Array<[name: string, template: string, want: string]> = [
    [
      'ZTWIM/helm default',
      'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
      'spiffe://example.org/ns/shop/sa/web-sa',
    ],
    [
      'helm with cluster name',
      'spiffe://{{ .TrustDomain }}/k8s/{{ .ClusterName }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
      'spiffe://example.org/k8s/demo-cluster/ns/shop/sa/web-sa',
    ],
    [
      'YAML-folded action',
      'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{\n    .PodSpec.ServiceAccountName }}',
      'spiffe://example.org/ns/shop/sa/web-sa',
    ],
    ['ZTWIM oidc DNS name', 'oidc-discovery.{{ .TrustDomain }}', 'oidc-discovery.example.org'],
    [
      'label via index (key with dots and slash)',
      'spiffe://{{ .TrustDomain }}/app/{{ index .PodMeta.Labels "app.kubernetes.io/name" }}',
      'spiffe://example.org/app/storefront',
    ],
    ['label via field', 'spiffe://{{ .TrustDomain }}/{{ .PodMeta.Labels.app }}', 'spiffe://example.org/web'],
    ['annotation via index', '{{ index .PodMeta.Annotations "example.com/role" }}', 'frontend'],
    ['pod UID selector', 'k8s:pod-uid:{{ .PodMeta.UID }}', 'k8s:pod-uid:3f1c2a9e-0b6d-4c55-9a1e-2d8f00c0ffee'],
    ['namespace selector template', 'k8s:ns:{{ .PodMeta.Namespace }}', 'k8s:ns:shop'],
    ['node name and UID', '{{ .PodSpec.NodeName }}/{{ .NodeMeta.Name }}/{{ .NodeMeta.UID }}', 'node-1/node-1/a1b2c3d4-node'],
    [
      'node labels and spec',
      '{{ index .NodeMeta.Labels "topology.kubernetes.io/zone" }} {{ .NodeSpec.PodCIDR }} {{ .NodeSpec.ProviderID }}',
      'zone-a 10.0.0.0/24 kind://docker/node-1',
    ],
    ['cluster domain DNS', '{{ .PodSpec.ServiceAccountName }}.{{ .PodMeta.Namespace }}.svc.{{ .ClusterDomain }}', 'web-sa.shop.svc.cluster.local'],
    ['printf', '{{ printf "spiffe://%s/ns/%s" .TrustDomain .PodMeta.Namespace }}', 'spiffe://example.org/ns/shop'],
    ['pipeline into printf', '{{ .PodMeta.Name | printf "pod-%s" }}', 'pod-web-7d9f8-abcde'],
    ['trim markers (the literal keeps its space)', 'spiffe:// {{- " " -}} {{ .TrustDomain -}}   /x', 'spiffe:// example.org/x'],
    ['comment', '{{/* the workload */}}a{{- /* trimmed */ -}}  b', 'ab'],
    ['if/else on a label', '{{ if eq .PodMeta.Labels.app "web" }}frontend{{ else }}other{{ end }}', 'frontend'],
    ['else if', '{{ if .PodMeta.Labels.none }}a{{ else if .PodMeta.Labels.app }}b{{ else }}c{{ end }}', 'b'],
    ['with', '{{ with .PodMeta.Labels.app }}app={{ . }}{{ else }}none{{ end }}', 'app=web'],
    ['with on missing label', '{{ with .PodMeta.Labels.none }}x{{ else }}none{{ end }}', 'none'],
    ['range over containers', '{{ range $i, $c := .PodSpec.Containers }}{{ if $i }},{{ end }}{{ $c.Name }}{{ end }}', 'app,sidecar'],
    [
      'nested field of a container',
      '{{ (index .PodSpec.Containers 0).Image }} {{ (index (index .PodSpec.Containers 0).Ports 0).ContainerPort }}',
      'registry.local/web:1.2 8443',
    ],
    [
      'variables and $',
      '{{ $ns := .PodMeta.Namespace }}{{ with .PodSpec }}{{ $ns }}/{{ .ServiceAccountName }}/{{ $.TrustDomain }}{{ end }}',
      'shop/web-sa/example.org',
    ],
    [
      'zero values of absent fields',
      '[{{ .PodSpec.Hostname }}][{{ .PodSpec.HostPID }}][{{ .PodMeta.Generation }}][{{ .PodSpec.RuntimeClassName }}]',
      '[][false][0][<nil>]',
    ],
    ['pointer field present', '{{ .PodSpec.Priority }} {{ .PodSpec.HostNetwork }}', '1000 true'],
    ['creation timestamp as time.Time prints', '{{ .PodMeta.CreationTimestamp }}', '2026-12-07 01:02:03 +0000 UTC'],
    ['len and comparisons', '{{ len .PodMeta.Labels }} {{ lt 1 2 }} {{ ge "b" "a" }} {{ ne .PodMeta.Name "x" }}', '3 true true true'],
    ['and/or return operands', '{{ and .PodMeta.Name 0 }}|{{ or "" .PodMeta.Namespace }}|{{ not .PodSpec.Hostname }}', '0|shop|true'],
    ['print and println', '{{ print 1 2 "a" 3 }}|{{ println "a" 1 }}', '1 2a3|a 1\n'],
    ['urlquery, html, js', '{{ urlquery "a b&c" }} {{ html "<a&\'>" }} {{ js "it\'s" }}', "a+b%26c &lt;a&amp;&#39;&gt; it\\'s"],
    ['slice of a string', '{{ slice .PodMeta.UID 0 8 }}', '3f1c2a9e'],
    ['map printed as Go prints it', '{{ .PodMeta.Annotations }}', 'map[example.com/role:frontend]'],
    ['char and raw string literals', '{{ printf "%c%q" \'x\' `a"b` }}', 'x"a\\"b"'],
  ];
  for (const [name, template, want] of cases) {
    it(name, () => assert.equal(render(template), want));
  }
});

describe('Go semantics for missing keys and values (missingkey=default, as the controller manager runs)', () => {
  it('a missing label read as a field renders <no value>', () => {
    assert.equal(render('{{ .PodMeta.Labels.absent }}'), '<no value>');
  });
  it('a field read on <no value> stays <no value>', () => {
    assert.equal(render('{{ .PodMeta.Labels.absent.deeper }}'), '<no value>');
  });
  it('index of a missing label gives the zero value ""', () => {
    assert.equal(render('[{{ index .PodMeta.Labels "absent" }}]'), '[]');
  });
  it('a missing value handed to printf is a nil interface', () => {
    assert.equal(render('{{ printf "%s" .PodMeta.Labels.absent }}|{{ .PodMeta.Labels.absent | printf "%s" }}'), '%!s(<nil>)|%!s(<nil>)');
  });
  it('printf in-band errors as fmt writes them', () => {
    assert.equal(render('{{ printf "%d %s %s" .PodMeta.Name 7 }}'), '%!d(string=web-7d9f8-abcde) %!s(int=7) %!s(MISSING)');
    assert.equal(render('{{ printf "%s" "a" "b" 3 }}'), 'a%!(EXTRA string=b, int=3)');
    assert.equal(render('{{ printf "%q|%v|%5s|%-4d|%03d|%x|%%" "a\\tb" .PodMeta.Labels.app "ab" 7 7 "hi" }}'), '"a\\tb"|web|   ab|7   |007|6869|%');
  });
  it('missingkey=error names the missing key instead', () => {
    assert.throws(
      () => parseTemplate('{{ .PodMeta.Labels.absent }}').render(DATA, { missingKey: 'error' }),
      (e: unknown) => isRegistrarError(e, 'template_render') && /map has no entry for key "absent"/.test(e.message),
    );
  });
  it('an unknown struct field is a render error naming the field and the Go type', () => {
    assert.throws(
      () => render('spiffe://{{ .TrustDomain }}/{{ .PodMeta.Nmae }}'),
      (e: unknown) =>
        isRegistrarError(e, 'template_render') && /can't evaluate field Nmae in type \*v1\.ObjectMeta/.test(e.message) && /col 32/.test(e.message),
    );
  });
  it('a field through a nil pointer is a render error', () => {
    assert.throws(
      () => render('{{ .PodSpec.SecurityContext.RunAsUser }}'),
      (e: unknown) => isRegistrarError(e, 'template_render') && /nil pointer evaluating \.PodSpec\.SecurityContext\.RunAsUser/.test(e.message),
    );
  });
  it('index errors are render errors', () => {
    assert.throws(
      () => render('{{ index .PodSpec.Containers 5 }}'),
      (e: unknown) => isRegistrarError(e, 'template_render') && /index out of range: 5/.test(e.message),
    );
    assert.throws(
      () => render('{{ index .PodMeta.Labels.absent "x" }}'),
      (e: unknown) => isRegistrarError(e, 'template_render') && /index of untyped nil/.test(e.message),
    );
    assert.throws(
      () => render('{{ index .PodMeta "x" }}'),
      (e: unknown) => isRegistrarError(e, 'template_render') && /can't index item of type \*v1\.ObjectMeta/.test(e.message),
    );
  });
  it('arguments to a non-function are refused', () => {
    assert.throws(
      () => render('{{ .PodMeta.Name "x" }}'),
      (e: unknown) => isRegistrarError(e, 'template_render') && /can't give argument to non-function \.PodMeta\.Name/.test(e.message),
    );
  });
});

describe('renderSpiffeId (render, then parse the ID in the trust domain, as the controller manager does)', () => {
  it('renders a valid ID', () => {
    const id = renderSpiffeId(parseTemplate('spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}'), DATA, 'example.org');
    assert.equal(id.toString(), 'spiffe://example.org/ns/shop');
  });
  it('a <no value> in the path is a render failure', () => {
    assert.throws(
      () => renderSpiffeId(parseTemplate('spiffe://{{ .TrustDomain }}/{{ .PodMeta.Labels.absent }}'), DATA, 'example.org'),
      (e: unknown) => isRegistrarError(e, 'template_render') && e.message.includes('"spiffe://example.org/<no value>"'),
    );
  });
  it('an empty label from index leaves an empty segment, refused', () => {
    assert.throws(
      () => renderSpiffeId(parseTemplate('spiffe://{{ .TrustDomain }}/{{ index .PodMeta.Labels "absent" }}/x'), DATA, 'example.org'),
      (e: unknown) => isRegistrarError(e, 'template_render'),
    );
  });
  it('another trust domain is refused', () => {
    assert.throws(
      () => renderSpiffeId(parseTemplate('spiffe://other.org/x'), DATA, 'example.org'),
      (e: unknown) => isRegistrarError(e, 'template_render') && /expected trust domain "example.org" but got "other.org"/.test(e.message),
    );
  });
});

describe('parse errors name position and text', () => {
  const cases: Array<[name: string, template: string, message: RegExp]> = [
    ['unknown function', 'spiffe://x/{{ frob .A }}', /function "frob" not defined at line 1 col 15 near ".*frob/],
    ['unclosed action', 'spiffe://x/{{ .PodMeta.Name', /unclosed action at line 1 col 12/],
    ['missing end', '{{ if .A }}x', /\{\{if\}\} has no \{\{end\}\}/],
    ['stray end', 'a{{ end }}', /unexpected \{\{end\}\}/],
    ['stray else', 'a{{ else }}', /unexpected \{\{else\}\}/],
    ['empty action', 'a{{ }}b', /missing value for command/],
    ['undefined variable', '{{ $x }}', /undefined variable "\$x"/],
    ['variable out of scope', '{{ if true }}{{ $v := 1 }}{{ end }}{{ $v }}', /undefined variable "\$v"/],
    ['unterminated string', '{{ printf "abc }}', /unterminated quoted string/],
    ['bad escape', '{{ "\\q" }}', /unknown escape \\q/],
    ['unclosed comment', '{{/* abc }}', /unclosed comment/],
    ['unexpected paren', '{{ .A) }}', /unexpected right paren/],
    ['break outside range', '{{ break }}', /outside \{\{range\}\}/],
    ['named templates', '{{ define "x" }}{{ end }}', /not supported/],
    ['bad character', '{{ .A ; }}', /unrecognized character in action: ";"/],
    ['literal as later pipeline stage', '{{ .A | "x" }}', /non executable command in pipeline stage 2/],
    ['multi-line position', 'line one\nline {{ two', /line 2 col 6/],
  ];
  for (const [name, template, message] of cases) {
    it(name, () => {
      assert.throws(
        () => parseTemplate(template),
        (e: unknown) => isRegistrarError(e, 'template_parse') && message.test(e.message),
      );
    });
  }
});

describe('properties', () => {
  const labelKey = fc.stringMatching(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]+)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?$/);
  const labelValue = fc.stringMatching(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?$/);

  it('text without {{ renders unchanged', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('{{')),
        (s) => parseTemplate(s).render(DATA) === s,
      ),
    );
  });

  it('index on labels returns the value for any key, "" for an absent one', () => {
    fc.assert(
      fc.property(fc.dictionary(labelKey, labelValue, { maxKeys: 5 }), labelKey, (labels, probe) => {
        const data = templateDataFor(CTX, { metadata: { labels } }, {});
        for (const [k, v] of Object.entries(labels)) {
          assert.equal(parseTemplate(`{{ index .PodMeta.Labels ${goQuote(k)} }}`).render(data), v);
        }
        const want = Object.hasOwn(labels, probe) ? labels[probe] : '';
        assert.equal(parseTemplate(`{{ index .PodMeta.Labels ${goQuote(probe)} }}`).render(data), want);
      }),
    );
  });

  it('a Go-quoted string literal renders as the string (quote and lexer agree)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => parseTemplate(`{{ ${goQuote(s)} }}`).render(DATA) === s));
  });

  it('printf "%s" and a pipeline into printf render the operand', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const data = goStruct('d', { S: s });
        return parseTemplate('{{ printf "%s" .S }}').render(data) === s && parseTemplate('{{ .S | printf "%s" }}').render(data) === s;
      }),
    );
  });

  it('trim markers remove exactly the surrounding white space', () => {
    const ws = fc.stringMatching(/^[ \t\r\n]*$/);
    const word = fc.stringMatching(/^[a-z]{1,5}$/);
    fc.assert(fc.property(word, ws, ws, word, (a, w1, w2, b) => parseTemplate(`${a}${w1}{{- "" -}}${w2}${b}`).render(DATA) === a + b));
  });

  it('map fields render <no value> for absent keys and the value for present ones', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/), labelValue, { maxKeys: 4 }),
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/),
        (m, k) => {
          const data = goStruct('d', { M: new GoMap(new Map(Object.entries(m))) });
          const want = Object.hasOwn(m, k) ? m[k] : '<no value>';
          return parseTemplate(`{{ .M.${k} }}`).render(data) === want;
        },
      ),
    );
  });

  it('parsing any text either succeeds or throws template_parse, never anything else', () => {
    const piece = fc.constantFrom(
      '{{',
      '}}',
      '{{-',
      ' -}}',
      '.A',
      '.B.C',
      '$',
      '$x',
      ':=',
      '|',
      '(',
      ')',
      '"s"',
      '`r`',
      "'c'",
      '1',
      '-2',
      'if',
      'else',
      'end',
      'with',
      'range',
      'printf',
      'index',
      ' ',
      '/*',
      '*/',
      'x',
      'nil',
      'true',
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(piece, fc.string({ maxLength: 3 })), { maxLength: 12 }), (parts) => {
        const text = parts.join('');
        try {
          const t = parseTemplate(text);
          try {
            t.render(goStruct('d', { A: 'a', B: goStruct('b', { C: 1 }) }));
          } catch (e) {
            if (!isRegistrarError(e, 'template_render')) throw e;
          }
        } catch (e) {
          if (!isRegistrarError(e)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
