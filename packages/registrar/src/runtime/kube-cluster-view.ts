// The ClusterView a pass reads, served from the informers' stores: no API request per pass and
// none per pod event. Endpoints are indexed by the pod UIDs their addresses target.
import type { Clock, Logger, Random } from '@ztwim/core';
import { byNamespace, Informer, RESOURCES, type KubeObject, type ListWatcher } from '@ztwim/k8s';
import { podUidsOfEndpoints, type ClusterView, type KubeJson } from '../reconcile/cluster-view.ts';

export interface ClusterInformers {
  readonly namespaces: Informer;
  readonly nodes: Informer;
  readonly pods: Informer;
  readonly endpoints: Informer;
}

export interface InformerDeps {
  readonly client: ListWatcher;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
}

const POD_INDEX = 'pod-uid';

export function clusterInformers(d: InformerDeps): ClusterInformers {
  const base = { client: d.client, clock: d.clock, random: d.random, logger: d.logger };
  return {
    namespaces: new Informer({ ...base, resource: RESOURCES.namespaces }),
    nodes: new Informer({ ...base, resource: RESOURCES.nodes }),
    pods: new Informer({ ...base, resource: RESOURCES.pods, indexers: { namespace: byNamespace } }),
    endpoints: new Informer({
      ...base,
      resource: RESOURCES.endpoints,
      indexers: { [POD_INDEX]: (o: KubeObject) => podUidsOfEndpoints(o as KubeJson).map((uid) => `${o.metadata.namespace ?? ''}/${uid}`) },
    }),
  };
}

export function informerClusterView(i: ClusterInformers): ClusterView {
  return {
    namespaces: () => i.namespaces.store.list() as KubeJson[],
    podsInNamespace: (ns) => i.pods.store.byIndex('namespace', ns) as KubeJson[],
    pod: (ns, name) => i.pods.store.getByName(ns, name) as KubeJson | undefined,
    node: (name) => i.nodes.store.getByName(undefined, name) as KubeJson | undefined,
    endpointsOfPod: (ns, uid) => i.endpoints.store.byIndex(POD_INDEX, `${ns}/${uid}`) as KubeJson[],
  };
}
