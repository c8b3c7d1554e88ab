/** Outrigger's public API for embedding and tests. The CLI (`outrigger`) is src/cli.ts. */
export { Sidecar, type SidecarOptions, type ListenerInfo } from './server';
import './extensions';
export { parseConfig, loadConfigFile, validateConfigFile, ConfigError, registerFilterValidator } from './config';
export type * from './config/types';
export { native, loadBinding } from './native';
export { Connection, type ConnectionHandler } from './network/connection';
export { registerNetworkFilter, type NetworkFilterFactory, type ListenerContext } from './filters/network/types';
export { createLoadBalancer, Host, type LoadBalancer } from './upstream/lb';
