import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { clearedSessionCookie, cookieValue, sameSecret, sessionCookie, Sessions, SESSION_COOKIE, SESSION_IDLE_MS } from './auth.ts';

describe('console logins and sessions', () => {
  const tokens = { admin: 'admin-token-0123456789', viewer: 'viewer-token-0123456789' };

  it('grants the role of the token given, and nothing for a wrong, empty or prefix token', () => {
    const s = new Sessions(tokens, new FakeClock());
    assert.equal(s.roleOf(tokens.admin), 'admin');
    assert.equal(s.roleOf(tokens.viewer), 'viewer');
    assert.equal(s.roleOf(''), undefined);
    assert.equal(s.roleOf('admin-token-012345678'), undefined);
    assert.equal(s.roleOf(`${tokens.admin}x`), undefined);
    assert.equal(new Sessions({ admin: tokens.admin, viewer: '' }, new FakeClock()).roleOf(''), undefined);
  });

  it('forgets a session unused for the idle time, keeps one in use, and closes on logout', () => {
    const clock = new FakeClock();
    const s = new Sessions(tokens, clock, 2 * SESSION_IDLE_MS);
    const a = s.open('admin');
    const b = s.open('viewer');
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.csrf, b.csrf);
    clock.advance(SESSION_IDLE_MS - 1000);
    assert.equal(s.get(a.id)?.role, 'admin');
    clock.advance(2000);
    assert.equal(s.get(a.id)?.role, 'admin', 'used 2 s ago');
    assert.equal(s.get(b.id), undefined, 'idle past the limit');
    s.close(a.id);
    assert.equal(s.get(a.id), undefined);
    assert.equal(s.get(undefined), undefined);
    assert.equal(s.get(''), undefined);
  });

  it('ends a session its lifetime after login however busy, and takes no token when login tokens are off', () => {
    const clock = new FakeClock();
    const s = new Sessions(tokens, clock, 3600_000);
    const a = s.open('admin');
    for (let i = 0; i < 59; i++) {
      clock.advance(60_000);
      assert.equal(s.get(a.id)?.role, 'admin', `${i + 1} min after login`);
    }
    clock.advance(60_000);
    assert.equal(s.get(a.id), undefined, 'an hour after login');
    const off = new Sessions(undefined, clock);
    assert.equal(off.tokenLogin, false);
    assert.equal(off.roleOf(''), undefined);
    assert.equal(off.open('viewer').role, 'viewer');
    assert.equal(s.tokenLogin, true);
  });

  it('sets the cookie HttpOnly and SameSite=Strict, Secure on https, and reads it back among others', () => {
    assert.equal(sessionCookie('abc', false), `${SESSION_COOKIE}=abc; Path=/; HttpOnly; SameSite=Strict`);
    assert.match(sessionCookie('abc', true), /; Secure$/);
    assert.match(clearedSessionCookie(false), /Max-Age=0/);
    assert.equal(cookieValue(`a=1; ${SESSION_COOKIE}=xyz; b=2`, SESSION_COOKIE), 'xyz');
    assert.equal(cookieValue('a=1', SESSION_COOKIE), undefined);
    assert.equal(cookieValue(undefined, SESSION_COOKIE), undefined);
  });

  it('compares secrets of different lengths without throwing', () => {
    assert.equal(sameSecret('a', 'a'), true);
    assert.equal(sameSecret('a', 'ab'), false);
  });
});
