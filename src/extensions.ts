/**
 * The built-in extensions. Importing this module registers every filter the binary ships:
 * config validators (into src/config/filter-registry.ts) and network filter builders (into
 * src/filters/network/types.ts). The config layer never imports filters itself; every entry
 * point that parses or builds configs (cli, server, worker, the public API) imports this.
 */
import './filters/network/tcp_proxy/tcp-proxy';
// The L7 `proxy` filter: RPC protocols (Bolt, Dubbo, example codec) and HTTP.
import './proxy/config';
import './proxy/proxy';
import './http/filter';
// Authorization, rate limits, fault injection (stream filters register through src/filters/stream/index.ts).
import './filters/network/rbac/rbac';
