/**
 * Who may talk on the upgrade socket: a process of this process's user, or root. Whoever talks
 * there gets the listening sockets and the live connections (old side), or hands over a config
 * and sockets (new side), so both sides check the other.
 *
 * The kernel says who is at the other end (SO_PEERCRED, fdPeerCred in native/fdpass.cc). An
 * addon built before fdPeerCred existed cannot ask: the check then falls back to the directory
 * of the socket, which must belong to this user (or root) and be closed to group and others
 * (UpgradeServer makes it 0700), so that only this user or root could have reached the socket.
 */
import * as fs from 'node:fs';
import type { FdPass } from './fdpass';

/** This process's uid (-1 where there is none). */
export function ownUid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

/** Why the peer on `fd` is refused, or null when it may talk. `dir`: the upgrade directory (fallback check). */
export function peerRefusal(fp: FdPass, fd: number, dir: string, ours = ownUid()): string | null {
  if (fp.fdPeerCred === undefined) return dirRefusal(dir, ours);
  let uid: number;
  let pid: number;
  try {
    ({ uid, pid } = fp.fdPeerCred(fd));
  } catch (e) {
    return `its credentials cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  const forced = process.env.OUTRIGGER_TEST_HOOKS === '1' ? process.env.OUTRIGGER_TEST_UPGRADE_PEER_UID : undefined;
  if (forced !== undefined && forced !== '') uid = Number(forced); // test hook: a peer of another user
  if (uid === ours || uid === 0) return null;
  return `pid ${pid} runs as uid ${uid}, this process as uid ${ours} (only the same user or root may hand over)`;
}

/** The fallback without SO_PEERCRED: the socket's directory is ours (or root's) and closed to group and others. */
export function dirRefusal(dir: string, ours = ownUid()): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    return `its directory ${dir} cannot be checked (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  if (st.uid !== ours && st.uid !== 0) return `the addon cannot read the peer's credentials and ${dir} belongs to uid ${st.uid}, not ${ours}`;
  if ((st.mode & 0o077) !== 0) return `the addon cannot read the peer's credentials and ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}; 700 expected)`;
  return null;
}
