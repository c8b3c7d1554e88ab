/**
 * The hot-upgrade conversation, over `<dir>/reconfig.sock` (a unix SOCK_SEQPACKET socket the
 * running process listens on; src/upgrade/channel.ts frames the messages):
 *
 *   new -> old  hello {pid, version}
 *   old -> new  state {pid, config (effective, as JSON), listeners [{name, host, port}], stats}
 *               | error {message}                       (disable_upgrade, busy, no addon)
 *        new builds its config (its file, or the old one's) and checks it
 *   new -> old  take-listeners
 *   old -> new  listeners {names} + one listening fd per name (SCM_RIGHTS)
 *        new starts its workers on them: both processes accept on the same sockets now
 *   new -> old  serving
 *   old -> new  draining                                 (old stopped accepting, closed its admin)
 *   old -> new  conn {listener, unread} + fd            (each Bolt/Dubbo connection, between requests)
 *   old -> new  stats {stats}                           (its counters, now and then)
 *   old -> new  done {stats}                            (last connection gone; old exits)
 *
 * If the new process goes away before `serving`, the old one never stopped accepting and goes
 * on as before. If the old one dies after `listeners`, the new one keeps what it received.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export const SOCKET_NAME = 'reconfig.sock';
export const PROTOCOL_VERSION = 1;

/** The directory of the upgrade socket: --upgrade-dir, else OUTRIGGER_UPGRADE_DIR, else <tmp>/outrigger. */
export function upgradeDir(flag?: string): string {
  return flag ?? process.env.OUTRIGGER_UPGRADE_DIR ?? path.join(os.tmpdir(), 'outrigger');
}

export function socketPath(dir: string): string {
  return path.join(dir, SOCKET_NAME);
}

/** Upgrade state as the admin API reports it (stats `server.upgrade_state`). */
export const enum UpgradeState {
  /** Serving; no hand-over in progress. */
  Idle = 0,
  /** Old process: a new one is taking the listeners. */
  HandingOver = 1,
  /** Old process: stopped accepting, handing connections over and draining. */
  Draining = 2,
  /** New process: took over; the old one is still draining. */
  TakingOver = 3,
  /** New process: the old one is gone. */
  Upgraded = 4,
}

export const UPGRADE_STATE_HELP = 'hot upgrade: 0 idle, 1 handing over (old), 2 draining after hand-over (old), 3 taking over (new), 4 upgraded (new)';
