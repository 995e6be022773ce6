import { internal, invalidArgument, isZtwimError, parseK8sPsatPayload, permissionDenied, ZtwimError } from '@ztwim/core';
import type { KubeClient, TokenReviewStatus } from '@ztwim/k8s';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import type { ChallengeFn, NodeAttestationResult, NodeAttestor, Selector } from './node-attestor.ts';

/** One configured cluster, its client built (SPIRE's `clusters = { "<name>" = { ... } }`). */
export interface K8sPsatCluster {
  /** `<namespace>:<service account>` names allowed to attest. */
  readonly serviceAccountAllowList: readonly string[];
  /** TokenReview audiences (SPIRE's default ["spire-server"]; [] means the apiserver's own). */
  readonly audience: readonly string[];
  readonly allowedNodeLabelKeys: readonly string[];
  readonly allowedPodLabelKeys: readonly string[];
  readonly client: KubeClient;
}

export interface K8sPsatAttestorConfig {
  readonly trustDomain: TrustDomain;
  readonly clusters: ReadonlyMap<string, K8sPsatCluster>;
}

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';
const NODE_NAME = 'authentication.kubernetes.io/node-name';
const NODE_UID = 'authentication.kubernetes.io/node-uid';

/** The single value of a TokenReview `user.extra` key, with SPIRE's complaints (what = "pod name"). */
function oneExtra(st: TokenReviewStatus, key: string, what: string): string {
  const v = st.user.extra[key];
  if (v === undefined) throw internal(`missing ${what}`);
  if (v.length !== 1) throw internal(`expected 1 ${what.replace(/^pod /, '')} but got: ${v.length}`);
  if (v[0] === '') throw internal(`${what} is empty`);
  return v[0] as string;
}

/** `system:serviceaccount:<ns>:<sa>` → [ns, sa] (SPIRE's GetNamesFromTokenStatus). */
function serviceAccountOf(username: string): [string, string] {
  if (username === '') throw internal('empty username');
  const names = username.split(':');
  if (names.length !== 4) throw internal(`unexpected username format: ${username}`);
  if (names[2] === '') throw internal('missing namespace');
  if (names[3] === '') throw internal('missing service account name');
  return [names[2] as string, names[3] as string];
}

const because = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A list as Go's `%q` prints a []string of printable text: `["a" "b"]`. */
const quotedList = (list: readonly string[]): string => `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;

/**
 * SPIRE's k8s_psat server node attestor: the agent sends `{"cluster","token"}` with a projected
 * service-account token bound to its pod; the cluster's apiserver vouches for the token
 * (TokenReview with the configured audiences), the service account must be allow-listed, and the
 * pod and its node are looked up. Agent ID `spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node UID>`,
 * re-attestation allowed. Refusal texts and codes follow SPIRE's plugin.
 */
export class K8sPsatAttestor implements NodeAttestor {
  readonly name = 'k8s_psat';
  private readonly cfg: K8sPsatAttestorConfig;

  constructor(cfg: K8sPsatAttestorConfig) {
    this.cfg = cfg;
  }

  async attest(payload: Uint8Array, _challenge: ChallengeFn): Promise<NodeAttestationResult> {
    try {
      return await this.attestPayload(payload);
    } catch (e) {
      // spire-server prefixes every refusal of a plugin with the plugin's name, so do we.
      if (isZtwimError(e)) throw new ZtwimError(e.code, `nodeattestor(${this.name}): ${e.message}`, { cause: e.cause ?? e, fields: e.fields });
      throw e;
    }
  }

  private async attestPayload(payload: Uint8Array): Promise<NodeAttestationResult> {
    const data = parseK8sPsatPayload(payload);
    const cluster = this.cfg.clusters.get(data.cluster);
    if (cluster === undefined) throw invalidArgument(`not configured for cluster "${data.cluster}"`);
    let st: TokenReviewStatus;
    try {
      st = await cluster.client.reviewToken(data.token, cluster.audience);
    } catch (e) {
      throw internal(`unable to validate token with TokenReview API: ${because(e)}`, { cause: e });
    }
    // As SPIRE's client: a review carrying an error is a failed call, even when unauthenticated.
    if (st.error !== '') throw internal(`unable to validate token with TokenReview API: token review API response contains an error: ${st.error}`);
    // As SPIRE's client (spiffe/spire#5142): a review that authenticates the token must name one of
    // the requested audiences in its status; an authenticator that is not audience-aware names none
    // and would let a token meant for any audience through.
    if (st.authenticated && cluster.audience.length > 0 && !cluster.audience.some((a) => st.audiences.includes(a))) {
      throw internal(
        `unable to validate token with TokenReview API: token review API did not validate audience: wanted one of ${quotedList(cluster.audience)} but got ${quotedList(st.audiences)}`,
      );
    }
    if (!st.authenticated) throw permissionDenied('token not authenticated according to TokenReview API');
    let namespace: string;
    let serviceAccount: string;
    try {
      [namespace, serviceAccount] = serviceAccountOf(st.user.username);
    } catch (e) {
      throw internal(`fail to parse username from token review status: ${because(e)}`);
    }
    const fullName = `${namespace}:${serviceAccount}`;
    if (!cluster.serviceAccountAllowList.includes(fullName)) throw permissionDenied(`"${fullName}" is not an allowed service account`);
    let podName: string;
    let podUid: string;
    try {
      podName = oneExtra(st, POD_NAME, 'pod name');
    } catch (e) {
      throw internal(`fail to get pod name from token review status: ${because(e)}`);
    }
    try {
      podUid = oneExtra(st, POD_UID, 'pod UID');
    } catch (e) {
      throw internal(`fail to get pod UID from token review status: ${because(e)}`);
    }
    // A token of Kubernetes >= 1.30 names its node: the node is then read while the pod is (one
    // apiserver round trip less to wait for), and read again below only if the pod says otherwise.
    const tokenNode = st.user.extra[NODE_NAME]?.[0];
    const early = tokenNode === undefined || tokenNode === '' ? undefined : cluster.client.getNode(tokenNode);
    early?.catch(() => undefined);
    const pod = await cluster.client.getPod(namespace, podName).catch((e: unknown) => {
      throw internal(`fail to get pod from k8s API server: ${because(e)}`, { cause: e });
    });
    // Beyond SPIRE: the pod now under that name must be the one the token is bound to (the
    // apiserver already refuses tokens of deleted pods; this closes the window of a same-named
    // replacement between the review and the lookup).
    if (pod.uid !== '' && pod.uid !== podUid) throw permissionDenied(`pod "${namespace}/${podName}" has UID ${pod.uid}, not the token's ${podUid}`);
    if (pod.nodeName === '') throw internal('fail to get node from k8s API server: empty node name');
    const node = await (early !== undefined && tokenNode === pod.nodeName ? early : cluster.client.getNode(pod.nodeName)).catch((e: unknown) => {
      throw internal(`fail to get node from k8s API server: ${because(e)}`, { cause: e });
    });
    if (node.uid === '') throw internal('node UID is empty');
    // Beyond SPIRE: a token naming its node (Kubernetes >= 1.30 adds node-uid) must name this
    // node, not an earlier node of the same name.
    const tokenNodeUid = st.user.extra[NODE_UID]?.[0];
    if (tokenNodeUid !== undefined && tokenNodeUid !== '' && tokenNodeUid !== node.uid) {
      throw permissionDenied(`token was issued on node "${pod.nodeName}" with UID ${tokenNodeUid}, but that node now has UID ${node.uid}`);
    }
    const v = (k: string, ...vals: string[]): Selector => ({ type: this.name, value: [k, ...vals].join(':') });
    const selectors: Selector[] = [
      v('cluster', data.cluster),
      v('agent_ns', namespace),
      v('agent_sa', serviceAccount),
      v('agent_pod_name', podName),
      v('agent_pod_uid', podUid),
      v('agent_node_ip', pod.hostIp),
      v('agent_node_name', pod.nodeName),
      v('agent_node_uid', node.uid),
    ];
    for (const [k, val] of Object.entries(node.labels).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (cluster.allowedNodeLabelKeys.includes(k)) selectors.push(v('agent_node_label', k, val));
    }
    for (const [k, val] of Object.entries(pod.labels).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (cluster.allowedPodLabelKeys.includes(k)) selectors.push(v('agent_pod_label', k, val));
    }
    return { agentId: this.agentId(data.cluster, node.uid), selectors, canReattest: true };
  }

  /** SPIRE: path.Join("spire", "agent", "k8s_psat", cluster, nodeUID) under the trust domain. */
  private agentId(cluster: string, nodeUid: string): SpiffeId {
    try {
      return SpiffeId.fromSegments(this.cfg.trustDomain, 'spire', 'agent', this.name, cluster, nodeUid);
    } catch (e) {
      throw invalidArgument(`failed to attest: cannot form an agent ID from cluster "${cluster}" and node UID "${nodeUid}": ${because(e)}`);
    }
  }
}
