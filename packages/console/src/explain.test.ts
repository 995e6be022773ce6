import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explain, formatExplanation, reachableEntries, type ExplainEntry, type ExplainSelector } from './explain.ts';

const TD = 'example.org';
const AGENT = `spiffe://${TD}/spire/agent/join_token/abc`;
const SERVER = `spiffe://${TD}/spire/server`;

const sel = (s: string): ExplainSelector => {
  const i = s.indexOf(':');
  return { type: s.slice(0, i), value: s.slice(i + 1) };
};

let n = 0;
function entry(spiffeId: string, parentId: string, selectors: string[], more: Partial<ExplainEntry> = {}): ExplainEntry {
  n++;
  return { id: `e${n}`, spiffeId, parentId, selectors: selectors.map(sel), federatesWith: [], expiresAt: 0, hint: '', ...more };
}

const uid1000 = ['unix:uid:1000', 'unix:gid:1000', 'unix:user:app'].map(sel);

describe('explain: which entries a workload gets from an agent, and why not', () => {
  it('follows the server reach: children of the agent, their descendants, and node-alias descendants', () => {
    const host = entry(`spiffe://${TD}/host`, AGENT, [`spiffe_id:${AGENT}`]);
    const direct = entry(`spiffe://${TD}/direct`, AGENT, ['unix:uid:1000']);
    const viaHost = entry(`spiffe://${TD}/via-host`, `spiffe://${TD}/host`, ['unix:uid:1000']);
    const nested = entry(`spiffe://${TD}/nested`, `spiffe://${TD}/via-host`, ['unix:uid:1000']);
    const clusterAlias = entry(`spiffe://${TD}/cluster`, SERVER, ['k8s_psat:cluster:demo']);
    const viaAlias = entry(`spiffe://${TD}/via-alias`, `spiffe://${TD}/cluster`, ['unix:uid:1000']);
    const otherAlias = entry(`spiffe://${TD}/other-cluster`, SERVER, ['k8s_psat:cluster:other']);
    const viaOtherAlias = entry(`spiffe://${TD}/via-other`, `spiffe://${TD}/other-cluster`, ['unix:uid:1000']);
    const foreignTd = entry('spiffe://other.org/x', AGENT, ['unix:uid:1000']);
    const all = [host, direct, viaHost, nested, clusterAlias, viaAlias, otherAlias, viaOtherAlias, foreignTd];

    const ids = reachableEntries(AGENT, [sel('k8s_psat:cluster:demo')], all)
      .map((e) => e.spiffeId)
      .sort();
    assert.deepEqual(ids, [`spiffe://${TD}/direct`, `spiffe://${TD}/host`, `spiffe://${TD}/nested`, `spiffe://${TD}/via-alias`, `spiffe://${TD}/via-host`]);

    const x = explain({ agentId: AGENT, nodeSelectors: [sel('k8s_psat:cluster:demo')], workloadSelectors: uid1000, entries: all, now: 0 });
    assert.deepEqual(x.aliases, [`spiffe://${TD}/cluster`, `spiffe://${TD}/host`]);
    assert.deepEqual(
      x.matched.map((e) => e.spiffeId),
      [`spiffe://${TD}/direct`, `spiffe://${TD}/nested`, `spiffe://${TD}/via-alias`, `spiffe://${TD}/via-host`],
    );
    // The alias made by `token generate -spiffeID` never matches a workload and is no near miss.
    assert.equal(x.unmatched, 0);
    // An entry parented to an alias this agent lacks matches the selectors but is out of reach.
    assert.deepEqual(
      x.outOfReach.map((e) => e.spiffeId),
      [`spiffe://${TD}/via-other`],
    );
  });

  it('names the selector each nearest entry lacks, fewest missing first', () => {
    const lacksOne = entry(`spiffe://${TD}/db`, AGENT, ['unix:uid:1000', 'unix:group:db']);
    const lacksTwo = entry(`spiffe://${TD}/web`, AGENT, ['unix:uid:0', 'unix:gid:0']);
    const lacksThree = entry(`spiffe://${TD}/root`, AGENT, ['unix:uid:0', 'unix:gid:0', 'unix:user:root']);
    const x = explain({ agentId: AGENT, nodeSelectors: [], workloadSelectors: uid1000, entries: [lacksThree, lacksTwo, lacksOne], now: 0, nearest: 2 });
    assert.equal(x.matched.length, 0);
    assert.equal(x.unmatched, 3);
    assert.deepEqual(
      x.nearMisses.map((m) => [m.entry.spiffeId, m.missing.map((s) => `${s.type}:${s.value}`)]),
      [
        [`spiffe://${TD}/db`, ['unix:group:db']],
        [`spiffe://${TD}/web`, ['unix:uid:0', 'unix:gid:0']],
      ],
    );
    const text = formatExplanation(x, uid1000, []);
    assert.match(text, /No identity issued/);
    assert.match(text, /spiffe:\/\/example\.org\/db {2}entry e\d+: lacks unix:group:db/);
    assert.match(text, /Nearest entries that do not match \(2 of 3\)/);
  });

  it('reports the federated bundles of matched entries and entries past their expiry', () => {
    const a = entry(`spiffe://${TD}/a`, AGENT, ['unix:uid:1000'], { federatesWith: ['spiffe://b.org', 'spiffe://a.org'], expiresAt: 100 });
    const b = entry(`spiffe://${TD}/b`, AGENT, ['unix:uid:1000'], { federatesWith: ['spiffe://b.org'] });
    const x = explain({ agentId: AGENT, nodeSelectors: [], workloadSelectors: uid1000, entries: [a, b], now: 100 });
    assert.deepEqual(x.federatesWith, ['spiffe://a.org', 'spiffe://b.org']);
    assert.deepEqual(x.expired, [a.id]);
    assert.match(formatExplanation(x, uid1000, []), /entry expired/);
  });

  it('a node alias needs every one of its selectors among the agent selectors', () => {
    const alias = entry(`spiffe://${TD}/nodes`, SERVER, ['x509pop:subject:cn:a', 'x509pop:ca:fp']);
    const child = entry(`spiffe://${TD}/w`, `spiffe://${TD}/nodes`, ['unix:uid:1000']);
    const partial = explain({ agentId: AGENT, nodeSelectors: [sel('x509pop:subject:cn:a')], workloadSelectors: uid1000, entries: [alias, child], now: 0 });
    assert.deepEqual(partial.aliases, []);
    assert.deepEqual(
      partial.outOfReach.map((e) => e.spiffeId),
      [`spiffe://${TD}/w`],
    );
    const full = explain({
      agentId: AGENT,
      nodeSelectors: [sel('x509pop:subject:cn:a'), sel('x509pop:ca:fp')],
      workloadSelectors: uid1000,
      entries: [alias, child],
      now: 0,
    });
    assert.deepEqual(
      full.matched.map((e) => e.spiffeId),
      [`spiffe://${TD}/w`],
    );
  });

  it('walks a parent cycle once', () => {
    const a = entry(`spiffe://${TD}/a`, `spiffe://${TD}/b`, ['unix:uid:1000']);
    const b = entry(`spiffe://${TD}/b`, `spiffe://${TD}/a`, ['unix:uid:1000']);
    const root = entry(`spiffe://${TD}/a`, AGENT, ['unix:uid:1000']);
    const x = explain({ agentId: AGENT, nodeSelectors: [], workloadSelectors: uid1000, entries: [a, b, root], now: 0 });
    assert.equal(x.reachable, 3);
    assert.equal(x.matched.length, 3);
  });
});
