/**
 * The xDS translator (src/xds/types.ts XdsTranslator): decoded Envoy v3 resources -> Outrigger's
 * validated config model, or an XdsResourceError (NACK) naming the resource, the field path and
 * the reason. Pure: no I/O (inline TLS material is parsed, files named by resources are read by
 * the same validators the MOSN JSON path runs), no state. See src/xds/README.md.
 */
// Every filter validator the binary ships (proxy, tcp_proxy, HTTP family, stream filters).
import '../../extensions';
import type { XdsTranslator } from '../types';
import { translateCluster, translateEndpoints } from './cluster';
import { translateListener } from './listener';
import { translateRoute } from './route';
import { translateSecret } from './secret';

export const translator: XdsTranslator = {
  listener: translateListener,
  cluster: translateCluster,
  route: translateRoute,
  endpoints: translateEndpoints,
  secret: translateSecret,
};
