// TEST ONLY (docs/operator.md): the project's test node has no pod network and no kube-proxy, so
// a pod reaches the apiserver only at the host address the operator itself was given
// (KUBERNETES_SERVICE_HOST/PORT on its Deployment), not through the `kubernetes` Service. With the
// test host-network override on, every container of a generated pod template gets those two
// variables (a container's own env wins over the kubelet's service variables).
import type { KubeObj } from './kube-port.ts';

interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly [k: string]: unknown;
}
interface Container {
  readonly env?: readonly EnvVar[];
  readonly [k: string]: unknown;
}
interface PodSpec {
  readonly containers?: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly [k: string]: unknown;
}

export function withApiserverEnv(o: KubeObj, host: string, port: string): KubeObj {
  const spec = o['spec'] as { template?: { spec?: PodSpec; [k: string]: unknown }; [k: string]: unknown } | undefined;
  const podSpec = spec?.template?.spec;
  if (spec === undefined || podSpec === undefined) return o;
  const add = (c: Container): Container => ({
    ...c,
    env: [
      ...(c.env ?? []).filter((e) => e.name !== 'KUBERNETES_SERVICE_HOST' && e.name !== 'KUBERNETES_SERVICE_PORT'),
      { name: 'KUBERNETES_SERVICE_HOST', value: host },
      { name: 'KUBERNETES_SERVICE_PORT', value: port },
    ],
  });
  return {
    ...o,
    spec: {
      ...spec,
      template: {
        ...spec.template,
        spec: {
          ...podSpec,
          ...(podSpec.containers === undefined ? {} : { containers: podSpec.containers.map(add) }),
          ...(podSpec.initContainers === undefined ? {} : { initContainers: podSpec.initContainers.map(add) }),
        },
      },
    },
  };
}
