/**
 * Protocol families of the `proxy` network filter. The RPC family (Bolt and the other
 * XCodecs, src/proxy) is the default; another family (HTTP, src/http) registers here and
 * claims the configs whose protocols it serves. The config validator and the worker's filter
 * builder of `proxy` ask this registry first.
 */
import type { FilterValidator } from '../config/parse';
import type { NetworkFilterFactoryBuilder } from '../filters/network/types';

export interface ProxyFamily {
  /** Stored in the normalized config as `family` so the worker finds the builder again. */
  readonly name: string;
  /** Whether a raw (user-written) proxy config is for this family. */
  claims(raw: unknown): boolean;
  readonly validate: FilterValidator;
  readonly build: NetworkFilterFactoryBuilder;
}

const families = new Map<string, ProxyFamily>();

export function registerProxyFamily(f: ProxyFamily): void {
  families.set(f.name, f);
}

/** The family claiming a raw config, if any (undefined = the RPC family). */
export function proxyFamilyForRaw(raw: unknown): ProxyFamily | undefined {
  for (const f of families.values()) if (f.claims(raw)) return f;
  return undefined;
}

/** The family of a normalized config (its `family` field). */
export function proxyFamilyForNormalized(cfg: Readonly<Record<string, unknown>>): ProxyFamily | undefined {
  const n = cfg['family'];
  return typeof n === 'string' ? families.get(n) : undefined;
}
