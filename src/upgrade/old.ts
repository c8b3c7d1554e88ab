/**
 * The running process's side of a hot upgrade (see protocol.ts): it listens on the upgrade
 * socket, answers one new process at a time, gives it the listening sockets, and once the new
 * one serves, stops accepting, hands its Bolt/Dubbo connections over between requests, drains
 * the rest (HTTP/1.1 Connection: close, HTTP/2 GOAWAY: the listener drain path) and exits as
 * soon as the last connection is gone, within graceful_timeout.
 */
import * as fs from 'node:fs';
import type { Sidecar } from '../server';
import type { WorkerToMain } from '../worker/messages';
import { Channel, ChannelClosed } from './channel';
import type { FdPass } from './fdpass';
import { peerRefusal } from './peer';
import { socketPath, UPGRADE_STATE_HELP, UpgradeState } from './protocol';
import { exportCounters } from './stats';

const ACCEPT_POLL_MS = 100;
/** How often the old process checks, while it drains, that the new one still lives (channel EOF). */
const PEER_POLL_MS = 50;
/** How long the new process may take to build its config, and to start its workers. */
const STEP_TIMEOUT_MS = 60_000;

export interface UpgradeServerOptions {
  readonly dir: string;
  /** Bind even if another live process answers there (the new process replacing the old one's socket). */
  readonly takeover: boolean;
  /** Called once the process handed over and drained: it must exit. */
  readonly exit: () => void;
}

export class UpgradeServer {
  private fd = -1;
  private ino = -1;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private resumed = 0;
  private peersRefused = 0;
  readonly path: string;

  constructor(
    private readonly fp: FdPass,
    private readonly sidecar: Sidecar,
    private readonly opts: UpgradeServerOptions,
  ) {
    this.path = socketPath(opts.dir);
  }

  /** Listens on the upgrade socket; returns a warning instead when that is impossible. */
  start(): string | null {
    try {
      fs.mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      return `hot upgrade unavailable: cannot create ${this.opts.dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
    }
    if (!this.opts.takeover && this.answers()) {
      return `hot upgrade unavailable for this process: another running Outrigger listens on ${this.path} (give each one its own --upgrade-dir)`;
    }
    try {
      fs.rmSync(this.path, { force: true });
      this.fd = this.fp.fdListen(this.path, 4);
      fs.chmodSync(this.path, 0o600);
      this.ino = fs.statSync(this.path).ino;
    } catch (e) {
      return `hot upgrade unavailable: cannot listen on ${this.path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
    }
    if (!this.opts.takeover) this.state(UpgradeState.Idle); // a new process reports its take-over until the old one is gone
    this.timer = setInterval(() => this.poll(), ACCEPT_POLL_MS);
    this.timer.unref();
    return null;
  }

  /** Stops listening; removes the socket file unless another process has put its own there. */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.fd >= 0) this.fp.closeFd(this.fd);
    this.fd = -1;
    try {
      if (fs.statSync(this.path).ino === this.ino) fs.rmSync(this.path, { force: true });
    } catch {
      /* gone already */
    }
  }

  /** Whether a process listens on the socket: a connect that completes, or one its full backlog refuses for now (EAGAIN). */
  private answers(): boolean {
    try {
      this.fp.closeFd(this.fp.fdConnect(this.path));
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EAGAIN';
    }
  }

  private state(s: UpgradeState): void {
    this.sidecar.hub.setExtra('upgrade_state', s, { help: UPGRADE_STATE_HELP });
  }

  private poll(): void {
    if (this.fd < 0) return;
    for (;;) {
      let c: number;
      try {
        c = this.fp.fdAccept(this.fd);
      } catch {
        return;
      }
      if (c < 0) return;
      const ch = new Channel(this.fp, c);
      const why = peerRefusal(this.fp, c, this.opts.dir);
      if (why !== null) {
        this.peersRefused++;
        this.sidecar.hub.setExtra('upgrade_peers_refused', this.peersRefused, { type: 'counter', help: 'connections to the upgrade socket refused by the peer check (another user)' });
        this.sidecar.log.warn({ socket: this.path }, `hot upgrade refused: the process that connected is not of this user: ${why}`);
        this.refuse(ch, 'refused: only a process of the same user (or root) may take over', true);
        continue;
      }
      if (this.busy) {
        this.refuse(ch, 'another hand-over is in progress', true);
        continue;
      }
      this.busy = true;
      void this.session(ch).then(
        (handedOver) => {
          if (!handedOver) this.busy = false;
        },
        (e: unknown) => {
          this.busy = false;
          this.state(UpgradeState.Idle);
          this.sidecar.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'hot upgrade abandoned; this process keeps serving');
        },
      );
    }
  }

  /** `unread`: its hello is not read yet; it is read first (a close with unread data resets the connection and the reason would be lost). */
  private refuse(ch: Channel, message: string, unread = false): void {
    const say = (): void => {
      try {
        ch.send({ t: 'error', message });
      } catch {
        /* it went away */
      }
      ch.close();
    };
    if (!unread) return say();
    void ch.recv(1000).then(say, say);
  }

  /** One hand-over; true once this process stopped accepting (it then exits). */
  private async session(ch: Channel): Promise<boolean> {
    const log = this.sidecar.log;
    let hello;
    try {
      hello = await ch.expect('hello', 5000);
    } catch (e) {
      ch.close();
      throw e;
    }
    const cfg = this.sidecar.currentConfig;
    if (isTrue((cfg.raw as Record<string, unknown> | null)?.disable_upgrade)) {
      this.refuse(ch, 'disable_upgrade is set in the running process\'s config');
      log.warn({ pid: hello.msg.pid }, 'hot upgrade refused: disable_upgrade');
      return false;
    }
    this.state(UpgradeState.HandingOver);
    log.info({ pid: hello.msg.pid }, 'hot upgrade: a new process asks for the listeners');
    const socks = this.sidecar.listenSockets();
    try {
      ch.send({
        t: 'state',
        pid: process.pid,
        config: cfg.unredacted ?? cfg.raw, // its secrets too (the peer is this user or root): the new process must serve with them
        listeners: socks.map((s) => ({ name: s.name, host: s.host, port: s.port })),
        stats: exportCounters(this.sidecar.hub),
      });
      await ch.expect('take-listeners', STEP_TIMEOUT_MS);
      ch.send({ t: 'listeners', names: socks.map((s) => s.name) }, socks.map((s) => s.fd));
      await ch.expect('serving', STEP_TIMEOUT_MS);
    } catch (e) {
      ch.close();
      this.state(UpgradeState.Idle);
      throw e instanceof ChannelClosed ? e : new Error(String(e));
    }
    // The new process accepts on the same sockets: stop here. Nothing is refused meanwhile.
    const t0 = Date.now();
    const newPid = hello.msg.pid;
    this.state(UpgradeState.Draining);
    this.close();
    const adminPort = this.sidecar.adminPort;
    this.sidecar.closeAdmin();
    let migrated = 0;
    let cut = 0;
    let gone = false;
    const dieAfter = process.env.OUTRIGGER_TEST_HOOKS === '1' ? Number(process.env.OUTRIGGER_TEST_UPGRADE_OLD_DIE_AFTER ?? 0) : 0;
    const sendStats = (t: 'stats' | 'done'): void => {
      if (!ch.isClosed) ch.send({ t, stats: exportCounters(this.sidecar.hub), migrated, cut, ms: Date.now() - t0 });
    };
    // The new process died (channel EOF or a failed send) before this one was done: take everything back.
    const newGone = (): void => {
      if (gone) return;
      gone = true;
      ch.close();
      this.sidecar.resumeServing();
    };
    this.sidecar.onWorkerMessage = (m: WorkerToMain) => {
      if (m.type === 'drained') cut += m.cut ?? 0;
      if (m.type !== 'migrate-conn') return;
      if (!gone) {
        try {
          ch.send({ t: 'conn', listener: m.listener, unread: Buffer.from(m.unread).toString('base64') }, [m.fd]);
          migrated++;
          this.fp.closeFd(m.fd);
          if (migrated === dieAfter) process.kill(process.pid, 'SIGKILL'); // test hook: killed during the transfer
          return;
        } catch (e) {
          log.warn({ err: String(e), listener: m.listener }, 'hot upgrade: a connection could not be handed over; it stays here');
          newGone();
        }
      }
      // Resumed: a connection let go of on its way out is served here again.
      if (!this.sidecar.postToOneWorker({ type: 'adopt', listener: m.listener, fd: m.fd, unread: m.unread })) this.fp.closeFd(m.fd);
    };
    try {
      ch.send({ t: 'draining' });
    } catch {
      newGone();
    }
    if (!gone) this.sidecar.postToWorkers({ type: 'migrate-out' });
    const statsTimer = setInterval(() => {
      try {
        sendStats('stats');
      } catch {
        newGone();
      }
    }, 1000);
    const peerTimer = setInterval(() => {
      try {
        const r = ch.tryRecv(); // the new process says nothing more: only its death (EOF) is expected
        for (const f of r?.fds ?? []) this.fp.closeFd(f);
      } catch {
        newGone();
      }
    }, PEER_POLL_MS);
    const how = gone ? 'resumed' : await this.sidecar.drainResumable();
    clearInterval(statsTimer);
    clearInterval(peerTimer);
    if (how === 'resumed') {
      this.resumed++;
      this.sidecar.hub.setExtra('upgrade_resumed', this.resumed, { type: 'counter', help: 'hand-overs undone: the new process died after it took over and this process took the listeners back' });
      log.warn({ pid: newPid, ms: Date.now() - t0, migrated }, 'hot upgrade: the new process died after it took over; this process takes the listeners back and keeps serving (the connections it had handed over are lost)');
      // Its own port again (port 0 resolved), else the configured one.
      await this.sidecar
        .startAdmin(adminPort > 0 ? adminPort : undefined)
        .catch(() => this.sidecar.startAdmin())
        .catch((e: unknown) => log.error({ err: e instanceof Error ? e.message : String(e) }, 'hot upgrade: admin server not reopened'));
      const warn = this.start();
      if (warn !== null) log.warn(warn);
      this.state(UpgradeState.Idle);
      return false;
    }
    await new Promise<void>((r) => this.sidecar.hub.refresh()?.then(r, r) ?? r());
    try {
      sendStats('done');
    } catch {
      /* nobody listens any more */
    }
    ch.close();
    const line = `hot upgrade: handed over and drained; ${cut} long-lived connection(s) still open at graceful_timeout were cut; exiting`;
    if (cut > 0) log.warn({ ms: Date.now() - t0, migrated, cut }, line);
    else log.info({ ms: Date.now() - t0, migrated, cut }, line);
    this.opts.exit();
    return true;
  }
}

function isTrue(v: unknown): boolean {
  return v === true || v === 'true';
}
