/**
 * What a worker would refuse in a router config, checked where the config is validated (main
 * thread, `validate` and reload): both compilations a worker may run (RPC and HTTP), so a regex
 * that is invalid or cannot run in linear time, an unsupported match condition or a bad action
 * is refused before any worker sees it. Throws an Error naming the JSON path and the value.
 */
import type { RouterConfig } from '../config/types';
import { compileHttpRouter } from './http-routes';
import { compileRouter } from './router';

export function validateRouterConfig(cfg: RouterConfig): void {
  compileRouter(cfg);
  compileHttpRouter(cfg);
}
