/**
 * The new process's side of a hot upgrade (see protocol.ts): `outrigger start --upgrade`.
 * It finds the running process through the upgrade socket, builds and checks its own config
 * (its file, or the running one's effective config) before it takes anything, receives the
 * listening sockets, starts its workers on them, and only then tells the old process to stop
 * accepting. It then adopts the connections the old process hands over and carries its counters.
 */
import type { OutriggerConfig } from '../config/types';
import { ConfigError, parseConfig, REDACTED } from '../config';
import { Sidecar, type SidecarOptions } from '../server';
import { checkBuild } from '../worker/snapshot';
import { Channel, ChannelClosed } from './channel';
import { fdPass, type FdPass } from './fdpass';
import { peerRefusal } from './peer';
import { PROTOCOL_VERSION, socketPath, UPGRADE_STATE_HELP, UpgradeState } from './protocol';
import { CarriedCounters } from './stats';

/** A hand-over that could not even start: the message is for the operator as is. */
export class UpgradeError extends Error {}

export interface UpgradeStartOptions extends Omit<SidecarOptions, 'config' | 'inherited' | 'deferAdmin'> {
  readonly dir: string;
  /** The new config; null: the running process's effective config. */
  readonly config: OutriggerConfig | null;
  /** Test hook (OUTRIGGER_TEST_HOOKS=1): die at this step. */
  readonly dieAt?: string;
}

export interface Upgraded {
  readonly sidecar: Sidecar;
  readonly config: OutriggerConfig;
  readonly oldPid: number;
  /** Settles when the old process is done (exited, or its channel closed). */
  readonly oldDone: Promise<OldDone>;
}

/** The old process's end: connections it handed over, ms from the hand-over to its exit, long-lived ones it cut at graceful_timeout. */
export interface OldDone {
  readonly migrated: number;
  readonly ms: number;
  readonly cut: number;
  /** It said `done` (false: it went away without, e.g. killed). */
  readonly clean: boolean;
}

interface ListenerAddr {
  name: string;
  host: string;
  port: number;
}

/** How long a full backlog on the upgrade socket (EAGAIN: the running process has not accepted yet) is waited out. */
const CONNECT_BUSY_MS = 5_000;

export async function connectToRunning(fp: FdPass, dir: string): Promise<Channel> {
  const p = socketPath(dir);
  let fd: number;
  for (const t0 = Date.now(); ; ) {
    try {
      fd = fp.fdConnect(p);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // The connect never blocks: a backlog full of connections the running process has not
      // accepted yet (it accepts on a timer) is tried again, a bounded number of times.
      if (code === 'EAGAIN' && Date.now() - t0 < CONNECT_BUSY_MS) {
        await new Promise((res) => setTimeout(res, 25));
        continue;
      }
      const why =
        code === 'ENOENT' || code === 'ECONNREFUSED'
          ? 'no running Outrigger listens there'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EAGAIN'
              ? `it did not accept a connection in ${CONNECT_BUSY_MS / 1000} s`
              : String(code ?? e);
      throw new UpgradeError(`--upgrade: cannot reach the running process at ${p}: ${why} (set --upgrade-dir or OUTRIGGER_UPGRADE_DIR to the directory it uses)`);
    }
  }
  // It would hand this process its config and sockets: only one of this user (or root) may.
  const refused = peerRefusal(fp, fd, dir);
  if (refused !== null) {
    fp.closeFd(fd);
    throw new UpgradeError(`--upgrade: refusing the process listening at ${p}: ${refused}`);
  }
  return new Channel(fp, fd);
}

function die(at: string, step: string): void {
  if (at === step && process.env.OUTRIGGER_TEST_HOOKS === '1') process.kill(process.pid, 'SIGKILL');
}

export async function upgradeStart(o: UpgradeStartOptions): Promise<Upgraded> {
  const fp = fdPass();
  if (typeof fp === 'string') throw new UpgradeError(fp);
  const ch = await connectToRunning(fp, o.dir);
  let received: number[] = [];
  try {
    ch.send({ t: 'hello', pid: process.pid, protocol: PROTOCOL_VERSION });
    const st = (await ch.expect('state', 10_000)).msg;
    const oldPid = typeof st.pid === 'number' ? st.pid : 0;
    // The config is built and checked before anything is taken: a bad one leaves the old process untouched.
    let config = o.config;
    if (config === null || isTrue((config.raw as Record<string, unknown> | null)?.inherit_old_mosnconfig)) {
      // A config made by xDS merging is known only with its secrets redacted: it cannot serve TLS.
      if (JSON.stringify(st.config ?? null).includes(`"${REDACTED}"`)) {
        throw new UpgradeError(`the running process (pid ${oldPid}) can only give its config with secrets redacted (TLS keys); start this one with its config file (-c FILE)`);
      }
      try {
        config = parseConfig(st.config, `the running process's config (pid ${oldPid})`);
      } catch (e) {
        throw new UpgradeError(e instanceof Error ? e.message : String(e));
      }
    }
    const built = checkBuild(config);
    if (built.length > 0) throw new UpgradeError(new ConfigError(built).message);
    const addrs = Array.isArray(st.listeners) ? (st.listeners as ListenerAddr[]) : [];
    ch.send({ t: 'take-listeners' });
    const got = await ch.expect('listeners', 10_000);
    received = got.fds;
    const names = Array.isArray(got.msg.names) ? (got.msg.names as string[]) : [];
    die(o.dieAt ?? '', 'listeners');
    const inherited = new Map<string, { fd: number; port: number }>();
    for (let i = 0; i < received.length; i++) {
      const a = addrs.find((x) => x.name === names[i]);
      const want = findListener(config, names[i]);
      // Same name and address (port 0 here takes the port the old one resolved): inherited. Others are closed.
      if (a !== undefined && want !== undefined && want.host === a.host && (want.port === a.port || want.port === 0)) {
        inherited.set(names[i], { fd: received[i], port: a.port });
      } else {
        fp.closeFd(received[i]);
      }
    }
    received = [];
    const sidecar = new Sidecar({ ...o, config, inherited, deferAdmin: true });
    try {
      await sidecar.start();
    } catch (e) {
      throw new UpgradeError(`start failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]} (the running process keeps serving)`);
    }
    sidecar.hub.setExtra('upgrade_state', UpgradeState.TakingOver, { help: UPGRADE_STATE_HELP });
    sidecar.hub.setExtra('upgrade_inherited_listeners', inherited.size, { help: 'listening sockets received from the previous process' });
    const carried = new CarriedCounters(sidecar.hub, sidecar.layout);
    carried.apply(st.stats);
    die(o.dieAt ?? '', 'started');
    ch.send({ t: 'serving' });
    await ch.expect('draining', 10_000);
    // From here on this process is the one serving: an admin port it cannot open is no reason to stop.
    await sidecar.startAdmin().catch((e: unknown) => sidecar.log.error({ err: e instanceof Error ? e.message : String(e) }, 'hot upgrade: admin server not started'));
    return { sidecar, config, oldPid, oldDone: follow(ch, fp, sidecar, carried) };
  } catch (e) {
    for (const f of received) fp.closeFd(f);
    ch.close();
    if (e instanceof ChannelClosed) throw new UpgradeError(`hand-over failed: ${e.message}`);
    throw e;
  }
}

/** After the take-over: adopts handed-over connections, carries counters, until the old process is done. */
async function follow(ch: Channel, fp: FdPass, sidecar: Sidecar, carried: CarriedCounters): Promise<OldDone> {
  let adopted = 0;
  let ms = 0;
  let cut = 0;
  const count = (): void => sidecar.hub.setExtra('upgrade_connections_adopted', adopted, { type: 'counter', help: 'connections handed over by the previous process' });
  count();
  for (;;) {
    let r;
    try {
      r = await ch.recv(1000);
    } catch {
      // The old process is gone without saying done (killed): what it handed over stays.
      sidecar.hub.setExtra('upgrade_state', UpgradeState.Upgraded, { help: UPGRADE_STATE_HELP });
      return { migrated: adopted, ms, cut, clean: false };
    }
    if (r === null) continue;
    const m = r.msg;
    if (m.t === 'conn' && r.fds.length === 1 && typeof m.listener === 'string') {
      const unread = typeof m.unread === 'string' ? Buffer.from(m.unread, 'base64') : Buffer.alloc(0);
      if (sidecar.postToOneWorker({ type: 'adopt', listener: m.listener, fd: r.fds[0], unread: new Uint8Array(unread) })) adopted++;
      else fp.closeFd(r.fds[0]);
      count();
      continue;
    }
    for (const f of r.fds) fp.closeFd(f);
    if (m.t === 'stats' || m.t === 'done') {
      carried.apply(m.stats);
      if (typeof m.ms === 'number') ms = m.ms;
    }
    if (m.t === 'done') {
      ch.close();
      if (typeof m.cut === 'number' && Number.isFinite(m.cut)) cut = m.cut;
      sidecar.hub.setExtra('upgrade_old_connections_cut', cut, { help: 'long-lived connections the previous process still had at graceful_timeout and cut' });
      sidecar.hub.setExtra('upgrade_state', UpgradeState.Upgraded, { help: UPGRADE_STATE_HELP });
      return { migrated: adopted, ms, cut, clean: true };
    }
  }
}

function findListener(config: OutriggerConfig, name: string | undefined): { host: string; port: number } | undefined {
  for (const s of config.servers) for (const l of s.listeners) if (l.name === name) return l.address;
  return undefined;
}

function isTrue(v: unknown): boolean {
  return v === true || v === 'true';
}
