// The rules of SPIRE's k8s_psat server node attestor (pkg/server/plugin/nodeattestor/k8spsat,
// pkg/common/plugin/k8s: GetNamesFromTokenStatus, GetPodNameFromTokenStatus,
// GetPodUIDFromTokenStatus; ztwim-operator.md §6.1) that k8s-psat.test.ts leaves open, and the
// two checks beyond SPIRE (the pod's UID, the token's node UID). No cluster: the apiserver is a
// KubeClient answering from one scenario's objects, as the plugin's own tests inject a fake client.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isZtwimError, marshalK8sPsatPayload, ZtwimError, type ErrorCode } from '@ztwim/core';
import type { KubeClient, KubeNode, KubePod, TokenReviewStatus } from '@ztwim/k8s';
import { TrustDomain } from '@ztwim/spiffe';
import { K8sPsatAttestor } from './k8s-psat.ts';

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';
const NODE_NAME = 'authentication.kubernetes.io/node-name';
const NODE_UID = 'authentication.kubernetes.io/node-uid';

interface Scenario {
  /** `system:serviceaccount:<ns>:<sa>` of the reviewed token. */
  username?: string;
  /** The review's `user.extra` (a pod-bound token of Kubernetes < 1.30 by default: no node keys). */
  extra?: Record<string, readonly string[]>;
  review?: () => Promise<TokenReviewStatus>;
  /** The review's `status.audiences` (by default the requested ones, as an audience-aware apiserver answers). */
  audiences?: readonly string[];
  authenticated?: boolean;
  pod?: Partial<KubePod>;
  node?: Partial<KubeNode>;
  getPod?: () => Promise<KubePod>;
  getNode?: (name: string) => Promise<KubeNode>;
}

/** The stand-in apiserver of one scenario; `calls` lists what the attestor asked for, in order. */
function apiserver(s: Scenario): { client: KubeClient; calls: string[] } {
  const calls: string[] = [];
  const pod: KubePod = {
    namespace: 'spire',
    name: 'agent-7',
    uid: 'pod-uid-7',
    nodeName: 'worker-1',
    hostIp: '192.0.2.10',
    serviceAccountName: 'spire-agent',
    labels: {},
    ...s.pod,
  };
  const node: KubeNode = { name: 'worker-1', uid: 'node-uid-1', labels: {}, ...s.node };
  const client: KubeClient = {
    description: 'cluster "stand-in" (https://127.0.0.1:6443)',
    reviewToken: async (token, audiences) => {
      calls.push(`review ${token} [${audiences.join(',')}]`);
      if (s.review !== undefined) return s.review();
      return {
        authenticated: s.authenticated ?? true,
        error: '',
        audiences: s.audiences ?? [...audiences],
        user: {
          username: s.username ?? 'system:serviceaccount:spire:spire-agent',
          uid: 'sa-uid',
          groups: ['system:serviceaccounts', 'system:authenticated'],
          extra: s.extra ?? { [POD_NAME]: ['agent-7'], [POD_UID]: ['pod-uid-7'] },
        },
      };
    },
    getPod: async (namespace, name) => {
      calls.push(`pod ${namespace}/${name}`);
      return s.getPod === undefined ? pod : s.getPod();
    },
    getNode: async (name) => {
      calls.push(`node ${name}`);
      return s.getNode === undefined ? node : s.getNode(name);
    },
  };
  return { client, calls };
}

/** The cluster's settings that a test changes: label keys and the TokenReview audiences. */
interface ClusterOptions {
  node?: string[];
  pod?: string[];
  audience?: string[];
}

function attestorFor(client: KubeClient, opts: ClusterOptions = {}): K8sPsatAttestor {
  return new K8sPsatAttestor({
    trustDomain: TrustDomain.parse('example.org'),
    clusters: new Map([
      [
        'east',
        {
          serviceAccountAllowList: ['spire:spire-agent'],
          audience: opts.audience ?? ['spire-server'],
          allowedNodeLabelKeys: opts.node ?? [],
          allowedPodLabelKeys: opts.pod ?? [],
          client,
        },
      ],
    ]),
  });
}

const noChallenge = async (): Promise<Uint8Array> => {
  throw new Error('k8s_psat sends no challenge');
};

async function attest(s: Scenario, opts?: ClusterOptions) {
  const { client, calls } = apiserver(s);
  const result = await attestorFor(client, opts).attest(marshalK8sPsatPayload({ cluster: 'east', token: 'psat' }), noChallenge);
  return { result, calls };
}

/** The refusal of a scenario, checked to be a ZtwimError with that code and text. */
async function refusal(s: Scenario, code: ErrorCode, message: string, opts?: ClusterOptions): Promise<ZtwimError> {
  let caught: unknown;
  await assert.rejects(
    attest(s, opts).then(() => undefined),
    (e: unknown) => {
      caught = e;
      return true;
    },
  );
  assert.ok(isZtwimError(caught), `a ZtwimError, got ${String(caught)}`);
  assert.equal(caught.message, message);
  assert.equal(caught.code, code);
  return caught;
}

const prefix = 'nodeattestor(k8s_psat): ';

describe('k8s_psat server attestor rules (SPIRE k8spsat)', () => {
  it('a username is <4 parts> with a namespace and a service account name, else the review is refused', async () => {
    const parse = `${prefix}fail to parse username from token review status: `;
    await refusal({ username: 'system:serviceaccount::spire-agent' }, 'ERR_INTERNAL', `${parse}missing namespace`);
    await refusal({ username: 'system:serviceaccount:spire:' }, 'ERR_INTERNAL', `${parse}missing service account name`);
    await refusal({ username: 'system:serviceaccount:spire' }, 'ERR_INTERNAL', `${parse}unexpected username format: system:serviceaccount:spire`);
    await refusal(
      { username: 'system:serviceaccount:spire:spire-agent:x' },
      'ERR_INTERNAL',
      `${parse}unexpected username format: system:serviceaccount:spire:spire-agent:x`,
    );
  });

  it('the allow list names whole "<namespace>:<service account>" pairs', async () => {
    await refusal(
      { username: 'system:serviceaccount:spire:spire-agent-2' },
      'ERR_PERMISSION_DENIED',
      `${prefix}"spire:spire-agent-2" is not an allowed service account`,
    );
    await refusal(
      { username: 'system:serviceaccount:spire-system:spire-agent' },
      'ERR_PERMISSION_DENIED',
      `${prefix}"spire-system:spire-agent" is not an allowed service account`,
    );
  });

  it("the pod name and UID are each exactly one non-empty extra value, with SPIRE's texts", async () => {
    const name = `${prefix}fail to get pod name from token review status: `;
    const uid = `${prefix}fail to get pod UID from token review status: `;
    await refusal({ extra: { [POD_NAME]: [], [POD_UID]: ['pod-uid-7'] } }, 'ERR_INTERNAL', `${name}expected 1 name but got: 0`);
    await refusal({ extra: { [POD_NAME]: [''], [POD_UID]: ['pod-uid-7'] } }, 'ERR_INTERNAL', `${name}pod name is empty`);
    await refusal({ extra: { [POD_NAME]: ['agent-7'], [POD_UID]: [] } }, 'ERR_INTERNAL', `${uid}expected 1 UID but got: 0`);
    await refusal({ extra: { [POD_NAME]: ['agent-7'], [POD_UID]: ['a', 'b'] } }, 'ERR_INTERNAL', `${uid}expected 1 UID but got: 2`);
    await refusal({ extra: { [POD_NAME]: ['agent-7'], [POD_UID]: [''] } }, 'ERR_INTERNAL', `${uid}pod UID is empty`);
  });

  it('an authenticated review must name one of the requested audiences (SPIRE: the authenticator may not be audience-aware)', async () => {
    const audienceError = `${prefix}unable to validate token with TokenReview API: token review API did not validate audience: wanted one of`;
    await refusal({ audiences: [] }, 'ERR_INTERNAL', `${audienceError} ["spire-server"] but got []`);
    await refusal(
      { audiences: ['https://kubernetes.default.svc', 'vault'] },
      'ERR_INTERNAL',
      `${audienceError} ["spire-server" "aud2"] but got ["https://kubernetes.default.svc" "vault"]`,
      {
        audience: ['spire-server', 'aud2'],
      },
    );
    // One requested audience in the status is enough, whichever it is.
    const { result } = await attest({ audiences: ['aud2'] }, { audience: ['spire-server', 'aud2'] });
    assert.equal(result.agentId.toString(), 'spiffe://example.org/spire/agent/k8s_psat/east/node-uid-1');
    // No requested audience (the apiserver's own): nothing to compare.
    const own = await attest({ audiences: ['https://kubernetes.default.svc'] }, { audience: [] });
    assert.deepEqual(own.calls.slice(0, 1), ['review psat []']);
    // A review that does not authenticate is refused as such, whatever its audiences.
    await refusal({ authenticated: false, audiences: [] }, 'ERR_PERMISSION_DENIED', `${prefix}token not authenticated according to TokenReview API`);
  });

  it('a review that carries an error is a failed call even when it says authenticated', async () => {
    const review = async (): Promise<TokenReviewStatus> => ({
      authenticated: true,
      error: 'token audiences ["spire-server"] is invalid for the target audiences ["other"]',
      audiences: [],
      user: { username: 'system:serviceaccount:spire:spire-agent', uid: '', groups: [], extra: { [POD_NAME]: ['agent-7'], [POD_UID]: ['pod-uid-7'] } },
    });
    await refusal(
      { review },
      'ERR_INTERNAL',
      `${prefix}unable to validate token with TokenReview API: token review API response contains an error: token audiences ["spire-server"] is invalid for the target audiences ["other"]`,
    );
  });

  it("a failed apiserver call is the refusal's cause; a refusal of the attestor's own keeps its unprefixed self", async () => {
    const reviewDown = new Error('create TokenReview: ECONNRESET');
    const e1 = await refusal(
      {
        review: async () => {
          throw reviewDown;
        },
      },
      'ERR_INTERNAL',
      `${prefix}unable to validate token with TokenReview API: create TokenReview: ECONNRESET`,
    );
    assert.equal(e1.cause, reviewDown);

    const podGone = new Error('get pod spire/agent-7: 404');
    const e2 = await refusal(
      {
        getPod: async () => {
          throw podGone;
        },
      },
      'ERR_INTERNAL',
      `${prefix}fail to get pod from k8s API server: get pod spire/agent-7: 404`,
    );
    assert.equal(e2.cause, podGone);

    const nodeGone = new Error('get node worker-1: 404');
    const e3 = await refusal(
      {
        getNode: async () => {
          throw nodeGone;
        },
      },
      'ERR_INTERNAL',
      `${prefix}fail to get node from k8s API server: get node worker-1: 404`,
    );
    assert.equal(e3.cause, nodeGone);

    const e4 = await refusal(
      { username: 'system:serviceaccount:default:default' },
      'ERR_PERMISSION_DENIED',
      `${prefix}"default:default" is not an allowed service account`,
    );
    assert.ok(isZtwimError(e4.cause, 'ERR_PERMISSION_DENIED'));
    assert.equal(e4.cause.message, '"default:default" is not an allowed service account');
  });

  it('a thrown value that is no Error is named by its text', async () => {
    await refusal(
      {
        review: async () => {
          throw 'connection refused';
        },
      },
      'ERR_INTERNAL',
      `${prefix}unable to validate token with TokenReview API: connection refused`,
    );
    await refusal(
      {
        getPod: async () => {
          throw 404;
        },
      },
      'ERR_INTERNAL',
      `${prefix}fail to get pod from k8s API server: 404`,
    );
  });

  it('a fault that is not a refusal (a client answering no pod object) passes through as it is', async () => {
    await assert.rejects(attest({ getPod: async () => null as unknown as KubePod }), (e: unknown) => {
      assert.ok(e instanceof TypeError, `the TypeError itself, got ${String(e)}`);
      assert.ok(!isZtwimError(e));
      assert.doesNotMatch((e as Error).message, /nodeattestor/);
      return true;
    });
  });

  it("a token of Kubernetes before 1.30 (no node extras) is attested through the pod's node", async () => {
    const { result, calls } = await attest({});
    assert.equal(result.agentId.toString(), 'spiffe://example.org/spire/agent/k8s_psat/east/node-uid-1');
    assert.deepEqual(calls, ['review psat [spire-server]', 'pod spire/agent-7', 'node worker-1']);
  });

  it("an empty node name or node UID in the token names no node: the pod's node is read and not compared", async () => {
    const { result, calls } = await attest({ extra: { [POD_NAME]: ['agent-7'], [POD_UID]: ['pod-uid-7'], [NODE_NAME]: [''], [NODE_UID]: [''] } });
    assert.equal(result.agentId.toString(), 'spiffe://example.org/spire/agent/k8s_psat/east/node-uid-1');
    assert.deepEqual(calls, ['review psat [spire-server]', 'pod spire/agent-7', 'node worker-1']);
  });

  it("the token's node UID, when named, must be the node's UID", async () => {
    const extra = { [POD_NAME]: ['agent-7'], [POD_UID]: ['pod-uid-7'], [NODE_NAME]: ['worker-1'], [NODE_UID]: ['node-uid-1'] };
    const { result } = await attest({ extra });
    assert.equal(result.agentId.toString(), 'spiffe://example.org/spire/agent/k8s_psat/east/node-uid-1');
    await refusal(
      { extra: { ...extra, [NODE_UID]: ['node-uid-0'] } },
      'ERR_PERMISSION_DENIED',
      `${prefix}token was issued on node "worker-1" with UID node-uid-0, but that node now has UID node-uid-1`,
    );
  });

  it("a pod answer without a UID is not compared with the token's (SPIRE compares none)", async () => {
    const { result } = await attest({ pod: { uid: '' } });
    assert.equal(result.agentId.toString(), 'spiffe://example.org/spire/agent/k8s_psat/east/node-uid-1');
    assert.ok(result.selectors.some((s) => s.value === 'agent_pod_uid:pod-uid-7'));
  });

  it('label selectors come sorted by key, whatever order the apiserver lists them in', async () => {
    const { result } = await attest(
      {
        node: { labels: { zone: 'z2', rack: 'r9', arch: 'arm64', 'kubernetes.io/os': 'linux' } },
        pod: { labels: { version: 'v3', tier: 'infra', app: 'spire-agent', owner: 'sec' } },
      },
      { node: ['zone', 'rack', 'arch', 'kubernetes.io/os'], pod: ['version', 'tier', 'app', 'owner'] },
    );
    assert.deepEqual(
      result.selectors.slice(8).map((s) => s.value),
      [
        'agent_node_label:arch:arm64',
        'agent_node_label:kubernetes.io/os:linux',
        'agent_node_label:rack:r9',
        'agent_node_label:zone:z2',
        'agent_pod_label:app:spire-agent',
        'agent_pod_label:owner:sec',
        'agent_pod_label:tier:infra',
        'agent_pod_label:version:v3',
      ],
    );
  });
});
