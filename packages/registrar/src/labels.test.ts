import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isRegistrarError } from './errors.ts';
import { matchesLabelSelector, parseLabelSelector } from './labels.ts';

const LABELS = { app: 'web', tier: 'frontend', 'app.kubernetes.io/name': 'storefront' };

describe('matchesLabelSelector (Kubernetes semantics)', () => {
  const cases: Array<[name: string, selector: unknown, want: boolean]> = [
    ['empty selector matches everything', {}, true],
    ['matchLabels equal', { matchLabels: { app: 'web' } }, true],
    ['matchLabels key with prefix', { matchLabels: { 'app.kubernetes.io/name': 'storefront' } }, true],
    ['matchLabels value differs', { matchLabels: { app: 'db' } }, false],
    ['matchLabels key absent', { matchLabels: { zone: 'a' } }, false],
    ['matchLabels ANDed', { matchLabels: { app: 'web', tier: 'backend' } }, false],
    ['In hit', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend', 'frontend'] }] }, true],
    ['In miss', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] }, false],
    ['In on absent key', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, false],
    ['NotIn miss', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['frontend'] }] }, false],
    ['NotIn hit', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }, true],
    ['NotIn on absent key matches', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, true],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    ['Exists on absent key', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
    ['DoesNotExist', { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, true],
    ['DoesNotExist on present key', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    ['labels and expressions ANDed', { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }] }, false],
  ];
  for (const [name, selector, want] of cases) {
    it(name, () => assert.equal(matchesLabelSelector(parseLabelSelector(selector), LABELS), want));
  }
  it('a nil selector matches everything, also objects without labels', () => {
    assert.equal(matchesLabelSelector(undefined, LABELS), true);
    assert.equal(matchesLabelSelector(undefined, undefined), true);
  });
  it('objects without labels: only absence-tolerant requirements match', () => {
    assert.equal(matchesLabelSelector(parseLabelSelector({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }), undefined), true);
    assert.equal(matchesLabelSelector(parseLabelSelector({ matchLabels: { a: 'b' } }), undefined), false);
  });
});

describe('parseLabelSelector refuses what LabelSelectorAsSelector refuses, naming the field', () => {
  const cases: Array<[name: string, selector: unknown, field: string, message: RegExp]> = [
    [
      'unknown operator',
      { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
      'spec.podSelector.matchExpressions[0].operator',
      /"Gt" is not a valid label selector operator/,
    ],
    [
      'lower-case operator',
      { matchExpressions: [{ key: 'a', operator: 'in', values: ['1'] }] },
      'spec.podSelector.matchExpressions[0].operator',
      /not a valid/,
    ],
    ['In without values', { matchExpressions: [{ key: 'a', operator: 'In' }] }, 'spec.podSelector.matchExpressions[0].values', /can't be empty/],
    [
      'Exists with values',
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      'spec.podSelector.matchExpressions[0].values',
      /must be empty/,
    ],
    ['bad key', { matchExpressions: [{ key: '-a', operator: 'Exists' }] }, 'spec.podSelector.matchExpressions[0].key', /invalid label key/],
    ['bad prefix', { matchLabels: { 'Foo_/a': 'x' } }, 'spec.podSelector.matchLabels["Foo_/a"]', /prefix part/],
    ['bad value', { matchLabels: { a: 'x y' } }, 'spec.podSelector.matchLabels["a"]', /invalid label value/],
    ['value too long', { matchLabels: { a: 'x'.repeat(64) } }, 'spec.podSelector.matchLabels["a"]', /63 characters/],
    [
      'bad value in expression',
      { matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', '-no'] }] },
      'spec.podSelector.matchExpressions[0].values[1]',
      /invalid label value/,
    ],
    ['unknown field', { matchLabel: { a: 'b' } }, 'spec.podSelector.matchLabel', /unknown field/],
    ['not an object', 'app=web', 'spec.podSelector', /must be an object/],
  ];
  for (const [name, selector, field, message] of cases) {
    it(name, () => {
      assert.throws(
        () => parseLabelSelector(selector, 'spec.podSelector'),
        (e: unknown) => isRegistrarError(e, 'label_selector') && e.field === field && message.test(e.message) && e.message.startsWith(field),
      );
    });
  }
});

describe('properties', () => {
  const key = fc.constantFrom('a', 'b', 'c', 'example.com/d');
  const value = fc.constantFrom('1', '2', '3');
  const labels = fc.dictionary(key, value);
  it('matchLabels {k: v} is the same as In [v]; NotIn is the negation of In', () => {
    fc.assert(
      fc.property(labels, key, fc.array(value, { minLength: 1, maxLength: 3 }), (l, k, vs) => {
        const inSel = parseLabelSelector({ matchExpressions: [{ key: k, operator: 'In', values: vs }] });
        const notIn = parseLabelSelector({ matchExpressions: [{ key: k, operator: 'NotIn', values: vs }] });
        assert.equal(matchesLabelSelector(notIn, l), !matchesLabelSelector(inSel, l));
        const one = parseLabelSelector({ matchLabels: { [k]: vs[0] } });
        const inOne = parseLabelSelector({ matchExpressions: [{ key: k, operator: 'In', values: [vs[0]] }] });
        assert.equal(matchesLabelSelector(one, l), matchesLabelSelector(inOne, l));
      }),
    );
  });
  it('Exists and DoesNotExist partition every label set; requirements AND', () => {
    fc.assert(
      fc.property(labels, key, key, (l, k1, k2) => {
        const ex = parseLabelSelector({ matchExpressions: [{ key: k1, operator: 'Exists' }] });
        const dne = parseLabelSelector({ matchExpressions: [{ key: k1, operator: 'DoesNotExist' }] });
        assert.notEqual(matchesLabelSelector(ex, l), matchesLabelSelector(dne, l));
        const both = parseLabelSelector({
          matchExpressions: [
            { key: k1, operator: 'Exists' },
            { key: k2, operator: 'Exists' },
          ],
        });
        assert.equal(matchesLabelSelector(both, l), k1 in l && k2 in l);
      }),
    );
  });
});
