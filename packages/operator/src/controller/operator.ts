// `ztwim operator`'s composition root: the render context from the environment and discovery,
// the controller manager, leader election.
import type { Clock, Logger, Random } from '@ztwim/core';
import { createResourceClient, kubeClientSource, LeaderElector, type ResourceClient } from '@ztwim/k8s';
import { renderOperands } from '../render/operands.ts';
import { imagesFromEnv, kubeletSecurePortFromEnv, type RenderContext } from '../render/context.ts';
import { countingKube, type ApiCallCounts } from './counting-kube.ts';
import { createOnlyFromEnv } from './create-only.ts';
import type { OperandKind } from './aggregate.ts';
import type { KubeObj } from './kube-port.ts';
import { OperatorManager } from './manager.ts';
import type { CrSet, OperandRender, RenderOperand } from './operand-reconciler.ts';
import { ServedApis, type ServedApiFlags } from './served-apis.ts';
import { withApiserverEnv } from './test-host-network.ts';

export interface StartOperatorOptions {
  readonly client: ResourceClient;
  readonly namespace: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly leaderElect: boolean;
  readonly version: string;
  /** How often the optional API groups are asked again (default 30 s). */
  readonly discoveryIntervalMs?: number;
}

export interface RunningOperator {
  /** Leading with informers synced, or standing by for the Lease. */
  ready(): boolean;
  /** API calls so far (reads, writes) of the reconcilers, and their passes. */
  readonly calls: OperatorCounts;
  stop(): Promise<void>;
}

/** What the reconcilers did so far: API calls by kind of verb, and reconcile passes. */
export interface OperatorCounts extends ApiCallCounts {
  passes: number;
}

/** The Lease the replicas campaign for, in the operator namespace. */
export const LEASE_NAME = 'ztwim-operator-lock';

const KEY: Readonly<Record<OperandKind, 'server' | 'agent' | 'csi' | 'oidc'>> = {
  SpireServer: 'server',
  SpireAgent: 'agent',
  SpiffeCSIDriver: 'csi',
  SpireOIDCDiscoveryProvider: 'oidc',
};

/**
 * The renderer of one operand kind over operator-api's renderOperands (all CRs in, that kind's
 * objects out). `ctx` may be a function: read at each pass (the served API groups change).
 */
export function operandRenderer(ctx: RenderContext | (() => RenderContext), post: (o: KubeObj) => KubeObj = (o) => o): RenderOperand {
  const current = typeof ctx === 'function' ? ctx : () => ctx;
  return (kind: OperandKind, crs: CrSet): OperandRender => {
    const r = renderOperands(
      {
        ztwim: crs.ztwim as never,
        ...(crs.SpireServer === undefined ? {} : { server: crs.SpireServer as never }),
        ...(crs.SpireAgent === undefined ? {} : { agent: crs.SpireAgent as never }),
        ...(crs.SpiffeCSIDriver === undefined ? {} : { csi: crs.SpiffeCSIDriver as never }),
        ...(crs.SpireOIDCDiscoveryProvider === undefined ? {} : { oidc: crs.SpireOIDCDiscoveryProvider as never }),
      },
      current(),
    );
    return {
      conditions: r.conditions[KEY[kind]] ?? [],
      objects: r.objects
        .filter((o) => o.owner === kind)
        .map((o) => ({ object: post(o.object as KubeObj), ...(o.createOnly === true ? { createOnly: true } : {}) })),
    };
  };
}

/**
 * The render context: namespace, images from RELATED_IMAGE_*, API groups served (asked now, or
 * `served` when given), test-only overrides.
 */
export async function renderContextFor(
  o: Pick<StartOperatorOptions, 'client' | 'namespace' | 'env' | 'version'>,
  served?: ServedApiFlags,
): Promise<RenderContext> {
  let flags = served;
  if (flags === undefined) {
    const apis = new ServedApis(o.client);
    await apis.refresh();
    flags = apis.flags();
  }
  const testHostNetwork = (o.env['ZTWIM_OPERATOR_TEST_HOST_NETWORK'] ?? '').toLowerCase() === 'true';
  const ports = o.env['ZTWIM_OPERATOR_TEST_PORTS'];
  const kubeletRoot = o.env['KUBELET_ROOT_DIR'];
  const kubeletSecurePort = kubeletSecurePortFromEnv(o.env);
  return {
    ...(kubeletRoot === undefined || kubeletRoot === '' ? {} : { kubeletRoot }),
    ...(kubeletSecurePort === undefined ? {} : { kubeletSecurePort }),
    namespace: o.namespace,
    images: imagesFromEnv(o.env),
    ...flags,
    ...(testHostNetwork ? { hostNetwork: true } : {}),
    ...(ports === undefined || ports === '' ? {} : { ports: JSON.parse(ports) as Record<string, number> }),
  };
}

export async function startOperator(o: StartOperatorOptions): Promise<RunningOperator> {
  // The optional groups are asked again every discoveryIntervalMs (served-apis.ts): Routes, SCCs
  // and ServiceMonitors follow CRDs installed or removed after the start.
  const served = new ServedApis(o.client);
  await served.refresh();
  const ctx = await renderContextFor(o, served.flags());
  const host = o.env['KUBERNETES_SERVICE_HOST'];
  const port = o.env['KUBERNETES_SERVICE_PORT'];
  // TEST ONLY (docs/operator.md): on the test node pods reach the apiserver at the operator's own
  // KUBERNETES_SERVICE_HOST/PORT, not through the kubernetes Service.
  const post = ctx.hostNetwork === true && host !== undefined && port !== undefined ? (obj: KubeObj) => withApiserverEnv(obj, host, port) : undefined;
  const render = operandRenderer(() => ({ ...ctx, ...served.flags() }), post);
  const calls: OperatorCounts = { reads: 0, writes: 0, passes: 0 };
  const createOnlyEnv = createOnlyFromEnv(o.env);
  const abort = new AbortController();
  let synced = false;
  let leading = false;
  /** One manager per term of leadership (informers run once). */
  const lead = async (signal: AbortSignal): Promise<void> => {
    const manager = new OperatorManager({
      client: o.client,
      namespace: o.namespace,
      render,
      createOnlyEnv,
      clock: o.clock,
      random: o.random,
      log: o.log,
      servedApis: served,
      ...(o.discoveryIntervalMs === undefined ? {} : { discoveryIntervalMs: o.discoveryIntervalMs }),
      wrapKube: (k) => countingKube(k, calls),
      onPass: () => {
        calls.passes++;
      },
    });
    await manager.run(signal, () => (synced = true));
    synced = false;
  };
  let done: Promise<void>;
  if (!o.leaderElect) {
    leading = true;
    done = lead(abort.signal);
  } else {
    const identity = `${o.env['POD_NAME'] ?? 'ztwim-operator'}_${Buffer.from(o.random(4)).toString('hex')}`;
    let term: Promise<void> = Promise.resolve();
    const elector = new LeaderElector({
      client: o.client,
      namespace: o.namespace,
      name: LEASE_NAME,
      identity,
      clock: o.clock,
      random: o.random,
      logger: o.log,
      onStartedLeading: (signal) => {
        leading = true;
        term = lead(signal);
      },
      onStoppedLeading: () => {
        leading = false;
      },
    });
    done = (async () => {
      // A lost Lease ends the term; campaign again until stopped.
      while (!abort.signal.aborted) {
        await elector.run(abort.signal);
        await term;
        if (!abort.signal.aborted) await o.clock.sleep(1000, abort.signal).catch(() => undefined);
      }
    })();
  }
  const running = done.catch((e: unknown) => {
    o.log.error({ error: (e as Error).message }, 'Operator stopped on an error');
  });
  // One line a minute: what the reconcilers did (at rest: reads only), and the discovery re-checks.
  let last = { ...calls };
  let lastGets = served.gets;
  const tick = (): void => {
    cancelTick = o.clock.setTimer(60_000, () => {
      o.log.info(
        {
          reconcile_passes_per_min: calls.passes - last.passes,
          api_reads_per_min: calls.reads - last.reads,
          api_writes_per_min: calls.writes - last.writes,
          discovery_gets_per_min: served.gets - lastGets,
          leading,
        },
        'Reconcile stats',
      );
      last = { ...calls };
      lastGets = served.gets;
      tick();
    });
  };
  let cancelTick: () => void = () => undefined;
  tick();
  return {
    calls,
    ready: () => (leading ? synced : true),
    async stop() {
      cancelTick();
      abort.abort();
      await running;
    },
  };
}

/** The operator's API client: the kubeconfig file, or '' for the in-cluster config. */
export async function createOperatorClient(kubeconfig: string): Promise<ResourceClient> {
  return await createResourceClient(kubeClientSource(kubeconfig));
}
