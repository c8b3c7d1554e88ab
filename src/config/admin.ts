/** admin section: the admin API address. */
import * as net from 'node:net';
import { showValue } from './errors';
import { DEFAULTS } from './defaults';
import { ConfigObject, type ParseState } from './reader';
import type { AdminConfig } from './types';
import { canonicalIpv6, isHostnameOrIp } from './values';

export function parseAdmin(st: ParseState, a: ConfigObject | undefined): AdminConfig {
  const def: AdminConfig = { address: { host: DEFAULTS.adminHost, port: DEFAULTS.adminPort } };
  if (!a) return def;
  const addr = a.obj('address');
  a.done();
  if (!addr) return def;
  const sa = addr.obj('socket_address');
  addr.done();
  if (!sa) return def;
  let host: string = DEFAULTS.adminHost;
  const h = sa.str('address');
  if (h !== undefined && h !== '') {
    const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
    if (!isHostnameOrIp(bare)) st.issues.error(sa.at('address'), `${showValue(h)} is not an IP address or host name`);
    else host = net.isIPv6(bare) ? canonicalIpv6(bare) : bare.toLowerCase();
  }
  const pv = sa.get('port_value');
  let port: number = DEFAULTS.adminPort;
  if (pv !== undefined) port = sa.checkInt(pv, sa.at('port_value'), { min: 0, max: 65535 }) ?? DEFAULTS.adminPort;
  sa.accept('protocol');
  sa.done();
  if (host === '0.0.0.0' || host === '::') {
    st.issues.warn(sa.at('address'), `${showValue(host)} exposes the admin API (config dump, stats) on all interfaces; prefer 127.0.0.1`);
  }
  return { address: { host, port } };
}
