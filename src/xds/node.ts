/**
 * The xDS `Node` this sidecar announces. Istio's control plane reads a sidecar's identity from
 * it: the id `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local` and metadata such as
 * ISTIO_VERSION, INSTANCE_IPS, NAMESPACE, NAME, CLUSTER_ID and LABELS. Defaults come from the
 * environment pilot-agent sets (POD_NAME, POD_NAMESPACE, INSTANCE_IP, ISTIO_META_*); a bootstrap
 * `node` section overrides them.
 */
import * as os from 'node:os';
import { toStruct } from './wire';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly subZone?: string };
}

export interface IstioNodeOptions {
  readonly ip?: string;
  readonly podName?: string;
  readonly namespace?: string;
  readonly domain?: string;
  readonly istioVersion?: string;
  readonly cluster?: string;
}

function firstIpv4(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Istio's sidecar node from options, then the environment, then local facts. */
export function istioNode(o: IstioNodeOptions = {}, env: NodeJS.ProcessEnv = process.env): NodeInfo {
  const ip = o.ip ?? env.INSTANCE_IP ?? firstIpv4();
  const pod = o.podName ?? env.POD_NAME ?? os.hostname();
  const ns = o.namespace ?? env.POD_NAMESPACE ?? 'default';
  const domain = o.domain ?? `${ns}.svc.cluster.local`;
  const metadata: Record<string, unknown> = {
    ISTIO_VERSION: o.istioVersion ?? env.ISTIO_VERSION ?? '1.20.0',
    INSTANCE_IPS: ip,
    NAMESPACE: ns,
    NAME: pod,
    CLUSTER_ID: env.ISTIO_META_CLUSTER_ID ?? 'Kubernetes',
    INTERCEPTION_MODE: 'REDIRECT',
    LABELS: {},
  };
  // pilot-agent's convention: ISTIO_META_FOO=bar becomes metadata FOO: "bar".
  for (const [k, v] of Object.entries(env)) if (k.startsWith('ISTIO_META_') && v !== undefined) metadata[k.slice('ISTIO_META_'.length)] = v;
  return { id: `sidecar~${ip}~${pod}.${ns}~${domain}`, cluster: o.cluster ?? env.ISTIO_META_CLUSTER ?? `${pod}.${ns}`, metadata };
}

/** The Node message in protobufjs object form. */
export function nodeMessage(n: NodeInfo, version: string): Record<string, unknown> {
  return {
    id: n.id,
    cluster: n.cluster,
    metadata: toStruct(n.metadata),
    locality: n.locality,
    userAgentName: 'outrigger',
    userAgentVersion: version,
    clientFeatures: ['envoy.lb.does_not_support_overprovisioning'],
  };
}
