/**
 * Loads the hand-written Istio-shaped fixtures (test/fixtures/xds/*.json): resolves their "@NAME@"
 * placeholders (shared pieces such as the inbound mTLS socket, PEM material made at test time)
 * and decodes each resource through proto.ts fromJson, as the ADS client would see it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromJson } from '../../../src/xds/proto';
import { TYPE_URL, type ResourceKind, type TranslatedSecret, type TranslationContext, type XdsMessage } from '../../../src/xds/types';

const DIR = path.join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'xds');

export function readFixture(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as Record<string, unknown>;
}

/** Replaces every string value "@NAME@" with subs[NAME] (deeply), and "@X@" inside strings too. */
export function substitute(v: unknown, subs: Readonly<Record<string, unknown>>): unknown {
  if (typeof v === 'string') {
    const whole = /^@([A-Z0-9_]+)@$/.exec(v);
    if (whole !== null && whole[1] in subs) return substitute(subs[whole[1]], subs);
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => substitute(x, subs));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== '_comment') out[k] = substitute(x, subs);
    return out;
  }
  return v;
}

export interface Fixtures {
  readonly listeners: XdsMessage[];
  readonly routes: XdsMessage[];
  readonly clusters: XdsMessage[];
  readonly endpoints: XdsMessage[];
  readonly secrets: XdsMessage[];
}

/** All fixtures decoded; `pem` gives the base64 PEM for the secrets' @CERT@, @KEY@, @CA@. */
export function loadFixtures(pem: { cert: string; key: string; ca: string }): Fixtures {
  const l = readFixture('listeners.json');
  const r = readFixture('routes.json');
  const c = readFixture('clusters.json');
  const subs: Record<string, unknown> = {
    INBOUND_CHAINS: l.inboundChains,
    OUTBOUND_HTTP_FILTERS: l.outboundHttpFilters,
    INBOUND_HTTP_FILTERS: l.inboundHttpFilters,
    INBOUND_MTLS: l.inboundMtls,
    INBOUND_HCM_9080: l.inboundHcm9080,
    INBOUND_HCM_PASSTHROUGH: l.inboundHcmPassthrough,
    ISTIO_RETRY: r.istioRetry,
    ISTIO_BREAKERS: c.istioBreakers,
    ISTIO_HTTP_OPTIONS: c.istioHttpOptions,
    CERT: Buffer.from(pem.cert).toString('base64'),
    KEY: Buffer.from(pem.key).toString('base64'),
    CA: Buffer.from(pem.ca).toString('base64'),
  };
  const load = (file: string, kind: ResourceKind, raw?: Record<string, unknown>): XdsMessage[] => {
    const doc = raw ?? readFixture(file);
    const list = substitute(doc.resources, subs) as unknown[];
    return list.map((x) => fromJson(TYPE_URL[kind], x));
  };
  return {
    listeners: load('listeners.json', 'listener', l),
    routes: load('routes.json', 'route', r),
    clusters: load('clusters.json', 'cluster', c),
    endpoints: load('endpoints.json', 'endpoints'),
    secrets: load('secrets.json', 'secret'),
  };
}

/** A TranslationContext over a fixed set of secrets, recording warnings. */
export function recordingContext(secrets: readonly TranslatedSecret[] = []): TranslationContext & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    secret: (name) => secrets.find((s) => s.name === name),
    warn: (resource, p, message) => warnings.push(`${resource}: ${p}: ${message}`),
  };
}
