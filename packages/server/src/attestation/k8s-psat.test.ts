import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isZtwimError, marshalK8sPsatPayload, type ErrorCode } from '@ztwim/core';
import type { KubeClient, KubeNode, KubePod, TokenReviewStatus } from '@ztwim/k8s';
import { TrustDomain } from '@ztwim/spiffe';
import { K8sPsatAttestor, type K8sPsatCluster } from './k8s-psat.ts';

const td = TrustDomain.parse('example.org');
const noChallenge = async (): Promise<Uint8Array> => {
  throw new Error('k8s_psat sends no challenge');
};

const goodReview: TokenReviewStatus = {
  authenticated: true,
  error: '',
  audiences: ['spire-server'],
  user: {
    username: 'system:serviceaccount:spire:spire-agent',
    uid: 'sa-uid',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:spire', 'system:authenticated'],
    extra: {
      'authentication.kubernetes.io/pod-name': ['spire-agent-x1'],
      'authentication.kubernetes.io/pod-uid': ['pod-uid-1'],
      'authentication.kubernetes.io/node-name': ['node-a'],
      'authentication.kubernetes.io/node-uid': ['node-uid-a'],
      'authentication.kubernetes.io/credential-id': ['JTI=abc'],
    },
  },
};
const goodPod: KubePod = {
  namespace: 'spire',
  name: 'spire-agent-x1',
  uid: 'pod-uid-1',
  nodeName: 'node-a',
  hostIp: '10.0.0.7',
  serviceAccountName: 'spire-agent',
  labels: { app: 'spire-agent', 'pod-template-hash': 'abc', tier: 'infra' },
};
const goodNode: KubeNode = { name: 'node-a', uid: 'node-uid-a', labels: { 'kubernetes.io/hostname': 'node-a', zone: 'z1', secret: 'no' } };

interface Calls {
  reviews: Array<{ token: string; audiences: readonly string[] }>;
  pods: string[];
  nodes: string[];
}

/** A KubeClient answering from fixed objects; `fail` makes a call throw. */
function fakeClient(
  opts: {
    review?: Partial<TokenReviewStatus>;
    user?: Partial<TokenReviewStatus['user']>;
    pod?: Partial<KubePod>;
    node?: Partial<KubeNode>;
    fail?: 'review' | 'pod' | 'node';
  } = {},
): { client: KubeClient; calls: Calls } {
  const calls: Calls = { reviews: [], pods: [], nodes: [] };
  const client: KubeClient = {
    description: 'cluster "fake" (https://127.0.0.1:1)',
    reviewToken: async (token, audiences) => {
      calls.reviews.push({ token, audiences });
      if (opts.fail === 'review') throw new Error('k8s cluster "fake": create TokenReview: ECONNREFUSED');
      // An audience-aware apiserver names the requested audiences the token is valid for.
      return { ...goodReview, audiences: [...audiences], ...opts.review, user: { ...goodReview.user, ...opts.user } };
    },
    getPod: async (ns, name) => {
      calls.pods.push(`${ns}/${name}`);
      if (opts.fail === 'pod') throw new Error(`k8s cluster "fake": get pod ${ns}/${name}: 404 pods "${name}" not found`);
      return { ...goodPod, ...opts.pod };
    },
    getNode: async (name) => {
      calls.nodes.push(name);
      if (opts.fail === 'node') throw new Error(`k8s cluster "fake": get node ${name}: 403 forbidden`);
      return { ...goodNode, ...opts.node };
    },
  };
  return { client, calls };
}

function attestor(client: KubeClient, cluster: Partial<K8sPsatCluster> = {}): K8sPsatAttestor {
  const c: K8sPsatCluster = {
    serviceAccountAllowList: ['spire:spire-agent'],
    audience: ['spire-server'],
    allowedNodeLabelKeys: [],
    allowedPodLabelKeys: [],
    client,
    ...cluster,
  };
  return new K8sPsatAttestor({ trustDomain: td, clusters: new Map([['prod', c]]) });
}

const payload = (cluster = 'prod', token = 'tok'): Uint8Array => marshalK8sPsatPayload({ cluster, token });

describe('K8sPsatAttestor', () => {
  it('names the agent by cluster and node UID, with every selector of SPIRE, re-attestable', async () => {
    const { client, calls } = fakeClient();
    const r = await attestor(client).attest(payload('prod', 'the-token'), noChallenge);
    assert.equal(r.agentId.toString(), 'spiffe://example.org/spire/agent/k8s_psat/prod/node-uid-a');
    assert.equal(r.canReattest, true);
    assert.deepEqual(
      r.selectors.map((s) => `${s.type}:${s.value}`),
      [
        'k8s_psat:cluster:prod',
        'k8s_psat:agent_ns:spire',
        'k8s_psat:agent_sa:spire-agent',
        'k8s_psat:agent_pod_name:spire-agent-x1',
        'k8s_psat:agent_pod_uid:pod-uid-1',
        'k8s_psat:agent_node_ip:10.0.0.7',
        'k8s_psat:agent_node_name:node-a',
        'k8s_psat:agent_node_uid:node-uid-a',
      ],
    );
    assert.deepEqual(calls, { reviews: [{ token: 'the-token', audiences: ['spire-server'] }], pods: ['spire/spire-agent-x1'], nodes: ['node-a'] });
  });

  it('adds node and pod labels only for allow-listed keys', async () => {
    const { client } = fakeClient();
    const r = await attestor(client, { allowedNodeLabelKeys: ['zone', 'kubernetes.io/hostname', 'absent'], allowedPodLabelKeys: ['tier', 'app'] }).attest(
      payload(),
      noChallenge,
    );
    assert.deepEqual(
      r.selectors.slice(8).map((s) => s.value),
      ['agent_node_label:kubernetes.io/hostname:node-a', 'agent_node_label:zone:z1', 'agent_pod_label:app:spire-agent', 'agent_pod_label:tier:infra'],
    );
  });

  it('reviews the token with the configured audiences (an empty list included)', async () => {
    for (const audience of [['a', 'b'], []]) {
      const { client, calls } = fakeClient();
      await attestor(client, { audience }).attest(payload(), noChallenge);
      assert.deepEqual(calls.reviews[0]?.audiences, audience);
    }
  });

  it('attests the same node again (re-attestation) to the same ID', async () => {
    const { client } = fakeClient();
    const a = attestor(client);
    const first = await a.attest(payload(), noChallenge);
    const second = await a.attest(payload(), noChallenge);
    assert.equal(second.agentId.toString(), first.agentId.toString());
  });

  const refusals: Array<{ name: string; run: () => Promise<unknown>; code: ErrorCode; message: string | RegExp }> = [
    {
      name: 'payload not JSON',
      run: () => attestor(fakeClient().client).attest(Buffer.from('{nope'), noChallenge),
      code: 'ERR_INVALID_ARGUMENT',
      message: /^nodeattestor\(k8s_psat\): failed to unmarshal data payload: /,
    },
    {
      name: 'missing cluster',
      run: () => attestor(fakeClient().client).attest(Buffer.from('{"token":"t"}'), noChallenge),
      code: 'ERR_INVALID_ARGUMENT',
      message: 'nodeattestor(k8s_psat): missing cluster in attestation data',
    },
    {
      name: 'missing token',
      run: () => attestor(fakeClient().client).attest(Buffer.from('{"cluster":"prod","token":""}'), noChallenge),
      code: 'ERR_INVALID_ARGUMENT',
      message: 'nodeattestor(k8s_psat): missing token in attestation data',
    },
    {
      name: 'unknown cluster',
      run: () => attestor(fakeClient().client).attest(payload('staging'), noChallenge),
      code: 'ERR_INVALID_ARGUMENT',
      message: 'nodeattestor(k8s_psat): not configured for cluster "staging"',
    },
    {
      name: 'apiserver unreachable',
      run: () => attestor(fakeClient({ fail: 'review' }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): unable to validate token with TokenReview API: k8s cluster "fake": create TokenReview: ECONNREFUSED',
    },
    {
      name: 'wrong audience (review error)',
      run: () =>
        attestor(
          fakeClient({
            review: { authenticated: false, error: '[invalid bearer token, token audiences ["other"] is invalid for the target audiences ["spire-server"]]' },
          }).client,
        ).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message:
        'nodeattestor(k8s_psat): unable to validate token with TokenReview API: token review API response contains an error: [invalid bearer token, token audiences ["other"] is invalid for the target audiences ["spire-server"]]',
    },
    {
      name: 'not authenticated',
      run: () => attestor(fakeClient({ review: { authenticated: false } }).client).attest(payload(), noChallenge),
      code: 'ERR_PERMISSION_DENIED',
      message: 'nodeattestor(k8s_psat): token not authenticated according to TokenReview API',
    },
    {
      name: 'username not a service account',
      run: () => attestor(fakeClient({ user: { username: 'admin' } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to parse username from token review status: unexpected username format: admin',
    },
    {
      name: 'empty username',
      run: () => attestor(fakeClient({ user: { username: '' } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to parse username from token review status: empty username',
    },
    {
      name: 'service account not allowed',
      run: () => attestor(fakeClient({ user: { username: 'system:serviceaccount:default:default' } }).client).attest(payload(), noChallenge),
      code: 'ERR_PERMISSION_DENIED',
      message: 'nodeattestor(k8s_psat): "default:default" is not an allowed service account',
    },
    {
      name: 'not a pod-bound token (no pod name)',
      run: () => attestor(fakeClient({ user: { extra: {} } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to get pod name from token review status: missing pod name',
    },
    {
      name: 'no pod UID',
      run: () => attestor(fakeClient({ user: { extra: { 'authentication.kubernetes.io/pod-name': ['p'] } } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to get pod UID from token review status: missing pod UID',
    },
    {
      name: 'two pod names',
      run: () => attestor(fakeClient({ user: { extra: { 'authentication.kubernetes.io/pod-name': ['p', 'q'] } } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to get pod name from token review status: expected 1 name but got: 2',
    },
    {
      name: 'pod lookup fails',
      run: () => attestor(fakeClient({ fail: 'pod' }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message:
        'nodeattestor(k8s_psat): fail to get pod from k8s API server: k8s cluster "fake": get pod spire/spire-agent-x1: 404 pods "spire-agent-x1" not found',
    },
    {
      name: 'pod replaced under the same name',
      run: () => attestor(fakeClient({ pod: { uid: 'pod-uid-2' } }).client).attest(payload(), noChallenge),
      code: 'ERR_PERMISSION_DENIED',
      message: 'nodeattestor(k8s_psat): pod "spire/spire-agent-x1" has UID pod-uid-2, not the token\'s pod-uid-1',
    },
    {
      name: 'pod not scheduled',
      run: () => attestor(fakeClient({ pod: { nodeName: '' } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to get node from k8s API server: empty node name',
    },
    {
      name: 'node lookup fails',
      run: () => attestor(fakeClient({ fail: 'node' }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): fail to get node from k8s API server: k8s cluster "fake": get node node-a: 403 forbidden',
    },
    {
      name: 'node without UID',
      run: () => attestor(fakeClient({ node: { uid: '' } }).client).attest(payload(), noChallenge),
      code: 'ERR_INTERNAL',
      message: 'nodeattestor(k8s_psat): node UID is empty',
    },
    {
      name: 'token issued on an earlier node of that name',
      run: () => attestor(fakeClient({ node: { uid: 'node-uid-b' } }).client).attest(payload(), noChallenge),
      code: 'ERR_PERMISSION_DENIED',
      message: 'nodeattestor(k8s_psat): token was issued on node "node-a" with UID node-uid-a, but that node now has UID node-uid-b',
    },
    {
      name: 'cluster name not a path segment',
      run: () =>
        new K8sPsatAttestor({
          trustDomain: td,
          clusters: new Map([
            [
              'a/b',
              { serviceAccountAllowList: ['spire:spire-agent'], audience: [], allowedNodeLabelKeys: [], allowedPodLabelKeys: [], client: fakeClient().client },
            ],
          ]),
        }).attest(payload('a/b'), noChallenge),
      code: 'ERR_INVALID_ARGUMENT',
      message: /^nodeattestor\(k8s_psat\): failed to attest: cannot form an agent ID from cluster "a\/b"/,
    },
  ];
  for (const r of refusals) {
    it(`refuses: ${r.name}`, async () => {
      await assert.rejects(r.run(), (e: unknown) => {
        assert.ok(isZtwimError(e), `a ZtwimError, got ${String(e)}`);
        assert.equal(e.code, r.code);
        if (typeof r.message === 'string') assert.equal(e.message, r.message);
        else assert.match(e.message, r.message);
        return true;
      });
    });
  }

  it("reads the node named by the token while the pod is read; by the pod's node name otherwise", async () => {
    const order: string[] = [];
    let releasePod: () => void = () => undefined;
    const podGate = new Promise<void>((r) => {
      releasePod = r;
    });
    const base = fakeClient().client;
    const client: KubeClient = {
      ...base,
      getPod: async (ns, name) => {
        order.push('pod start');
        await podGate;
        order.push('pod end');
        return base.getPod(ns, name);
      },
      getNode: async (name) => {
        order.push(`node ${name}`);
        return base.getNode(name);
      },
    };
    const done = attestor(client).attest(payload(), noChallenge);
    await new Promise((r) => setImmediate(r));
    releasePod();
    await done;
    assert.deepEqual(order, ['node node-a', 'pod start', 'pod end']);

    for (const [extra, want] of [
      [{ 'authentication.kubernetes.io/node-name': ['elsewhere'] }, ['node elsewhere', 'node node-a']],
      [{}, ['node node-a']],
    ] as const) {
      const seen: string[] = [];
      const { client: c2 } = fakeClient({ user: { extra: { ...goodReview.user.extra, 'authentication.kubernetes.io/node-name': [], ...extra } } });
      const wrapped: KubeClient = {
        ...c2,
        getNode: async (n) => {
          seen.push(`node ${n}`);
          return c2.getNode(n);
        },
      };
      await attestor(wrapped).attest(payload(), noChallenge);
      assert.deepEqual(seen, want);
    }
  });

  it('looks nothing up for a token the review refused', async () => {
    const { client, calls } = fakeClient({ review: { authenticated: false } });
    await assert.rejects(attestor(client).attest(payload(), noChallenge));
    assert.deepEqual([calls.pods, calls.nodes], [[], []]);
  });
});
