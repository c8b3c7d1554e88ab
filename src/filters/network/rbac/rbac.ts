/**
 * `rbac` network filter: Envoy's network RBAC filter (envoy.extensions.filters.network.rbac.v3.RBAC),
 * checked once per connection when it reaches the chain (after the TLS handshake, so the mTLS
 * peer is known): destination port / IP, source IP, the peer's principal (SPIFFE URI SAN), SNI.
 * A denied connection is closed before any later filter sees it.
 *
 *   { "type": "rbac", "config": { "stat_prefix": "tcp.", "rules": { "action": "ALLOW", "policies": {..} },
 *                                 "shadow_rules": {..}, "enforcement_type": "ONE_TIME_ON_FIRST_BYTE" } }
 *
 * Counters: rbac_network.<listener>.<stat_prefix>allowed | denied | shadow_allowed | shadow_denied,
 * and per policy (src/filters/stream/rbac/rbac.ts has the same scheme).
 * Both enforcement types decide once: every permission and principal it supports is fixed for
 * the life of a connection. It is a read filter, so it stands before tcp_proxy or the RPC
 * `proxy`; before an HTTP `proxy` (which takes raw sockets) it cannot run: use the `rbac`
 * stream filter there.
 */
import type { StreamPeer } from '../../../api/stream-filter';
import { registerFilterValidator, type FilterValidationContext } from '../../../config/filter-registry';
import { JsonObj } from '../../shared/json';
import { parseRbacFilterRules, type RbacInput } from '../../shared/rbac';
import { RbacCheck, withCells, type RbacFilterConfig } from '../../stream/rbac/rbac';
import { FilterStatus, registerNetworkFilter, type ConnectionInfo, type NetworkFilterFactory, type ReadFilter, type ReadFilterCallbacks } from '../types';

export type NetworkRbacConfig = RbacFilterConfig;

const KEYS = ['stat_prefix', 'rules', 'matcher', 'shadow_rules', 'shadow_matcher', 'shadow_rules_stat_prefix', 'enforcement_type', 'delay_deny', '@type'];

export function validateNetworkRbac(raw: unknown, path: string, ctx: FilterValidationContext): NetworkRbacConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(KEYS, 'network rbac');
  const prefix = o.str('stat_prefix', '') ?? '';
  const shadowPrefix = o.str('shadow_rules_stat_prefix', '') ?? '';
  o.enumOf('enforcement_type', ['ONE_TIME_ON_FIRST_BYTE', 'CONTINUOUS'] as const, 'ONE_TIME_ON_FIRST_BYTE');
  if (o.has('delay_deny')) ctx.warn(o.at('delay_deny'), 'delay_deny is not supported: denied connections are closed at once');
  const rs = parseRbacFilterRules(o, ctx, 'network');
  return rs === undefined ? undefined : withCells(rs, `rbac_network.${ctx.listenerName}`, prefix, shadowPrefix + prefix);
}

/** RbacInput over a connection (one per filter factory, re-pointed per connection). */
class ConnectionInput implements RbacInput {
  info: ConnectionInfo | null = null;
  peerId: StreamPeer | null = null;

  header(): string | undefined {
    return undefined;
  }

  path(): string | undefined {
    return undefined;
  }

  localPort(): number {
    return (this.info as ConnectionInfo).localPort;
  }

  localIp(): string {
    return (this.info as ConnectionInfo).localAddress;
  }

  remoteIp(): string {
    return (this.info as ConnectionInfo).remoteAddress;
  }

  peer(): StreamPeer | null {
    return this.peerId;
  }

  sni(): string {
    const i = this.info as ConnectionInfo;
    return i.serverName;
  }
}

const PASS: ReadFilter = {
  onNewConnection: () => FilterStatus.Continue,
  onData: () => FilterStatus.Continue,
};

const STOP: ReadFilter = {
  onNewConnection: () => FilterStatus.StopIteration,
  onData: () => FilterStatus.StopIteration,
};

class NetworkRbacFactory implements NetworkFilterFactory {
  private readonly rbac: RbacCheck;
  private readonly input = new ConnectionInput();

  constructor(cfg: NetworkRbacConfig) {
    this.rbac = new RbacCheck(cfg);
  }

  onAccept(): void {
    throw new Error('network rbac is a read filter');
  }

  /** Decides at connection start; a denied connection is closed and goes no further. */
  createFilter(cb: ReadFilterCallbacks): ReadFilter {
    const x = this.input;
    x.info = cb.info;
    const tls = cb.connection.tlsInfo;
    x.peerId = tls === null ? null : tls.peer;
    const ok = this.rbac.check(x);
    x.info = null;
    x.peerId = null;
    if (ok) return PASS;
    cb.connection.destroy();
    return STOP;
  }
}

registerFilterValidator('rbac', (config, path, ctx) => ({ value: validateNetworkRbac(config, path, ctx) }));
registerNetworkFilter('rbac', (config) => new NetworkRbacFactory((config as { value: NetworkRbacConfig }).value));
