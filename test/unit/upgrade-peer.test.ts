/**
 * The upgrade socket's peer check (src/upgrade/peer.ts): the kernel's SO_PEERCRED through the
 * addon (same user passes; another user, forced by the test hook, is refused), and the fallback
 * of an addon without fdPeerCred (the directory must be this user's and closed to others).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fdPass, type FdPass } from '../../src/upgrade/fdpass';
import { dirRefusal, ownUid, peerRefusal } from '../../src/upgrade/peer';

const fp = fdPass();
const skip = typeof fp === 'string' ? fp : false;

function connected(f: FdPass): { dir: string; client: number; server: number; close(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-peer-'));
  const l = f.fdListen(path.join(dir, 's.sock'), 4);
  const client = f.fdConnect(path.join(dir, 's.sock'));
  const server = f.fdAccept(l);
  f.closeFd(l);
  return {
    dir,
    client,
    server,
    close() {
      f.closeFd(client);
      f.closeFd(server);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('same user: both ends pass; the kernel reports this process', { skip }, () => {
  const f = fp as FdPass;
  const c = connected(f);
  try {
    assert.deepEqual(f.fdPeerCred!(c.server), { uid: ownUid(), pid: process.pid });
    assert.equal(peerRefusal(f, c.server, c.dir), null);
    assert.equal(peerRefusal(f, c.client, c.dir), null);
  } finally {
    c.close();
  }
});

test('another user (test hook): refused, naming both uids', { skip }, () => {
  const f = fp as FdPass;
  const c = connected(f);
  process.env.OUTRIGGER_TEST_HOOKS = '1';
  process.env.OUTRIGGER_TEST_UPGRADE_PEER_UID = '4242';
  try {
    const why = peerRefusal(f, c.server, c.dir, 1000);
    assert.match(why ?? '', new RegExp(`pid ${process.pid} runs as uid 4242, this process as uid 1000`));
    // Root is always let in.
    process.env.OUTRIGGER_TEST_UPGRADE_PEER_UID = '0';
    assert.equal(peerRefusal(f, c.server, c.dir, 1000), null);
  } finally {
    delete process.env.OUTRIGGER_TEST_HOOKS;
    delete process.env.OUTRIGGER_TEST_UPGRADE_PEER_UID;
    c.close();
  }
  assert.throws(() => f.fdPeerCred!(2 ** 31 - 1), /EBADF/); // no such fd: a JS error, not a crash
});

test('an addon without fdPeerCred: the directory decides (ours and 0700, else refused)', { skip }, () => {
  const f = { ...(fp as FdPass), fdPeerCred: undefined };
  const c = connected(f);
  try {
    fs.chmodSync(c.dir, 0o700);
    assert.equal(peerRefusal(f, c.server, c.dir), null);
    fs.chmodSync(c.dir, 0o755);
    assert.match(peerRefusal(f, c.server, c.dir) ?? '', /cannot read the peer's credentials and .* is open to other users \(mode 755; 700 expected\)/);
    fs.chmodSync(c.dir, 0o700);
    if (ownUid() === 0) {
      fs.chownSync(c.dir, 4242, 4242);
      assert.match(dirRefusal(c.dir, 1000) ?? '', /belongs to uid 4242, not 1000/);
    }
    assert.match(dirRefusal(path.join(c.dir, 'missing')) ?? '', /cannot be checked \(ENOENT\)/);
  } finally {
    c.close();
  }
});
