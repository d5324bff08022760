/** Security alert mails over a real SMTP server, and the device labels they show. */
import { createServer, type AddressInfo } from 'node:net';
import { deviceLabel, MAX_USER_AGENT_LENGTH } from '../../src/http/user-agent.js';
import { createLogger } from '../../src/logger.js';
import { Mailer } from '../../src/notify/mailer.js';
import { factorDisplayName, formatUtc, SecurityAlerts, type SecurityAlert } from '../../src/notify/security-alerts.js';
import { TestSmtpServer } from '../support/smtp.js';

const ISSUER = 'https://id.example.test';
const RECOVER = `${ISSUER}/recover`;
const AT = new Date('2026-11-23T14:05:31Z');
const AT_TEXT = '23 November 2026 at 14:05 UTC';
const FROM = 'Gatehouse <no-reply@gatehouse.test>';

const UA = {
  chromeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  safariIphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  safariIpad:
    'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  chromeIphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1',
  safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  firefoxUbuntu: 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  edgeMac:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  edgeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86',
  chromeAndroid:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36',
  samsungAndroid:
    'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36',
  chromeOs: 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
};

/** A logger whose lines the test can read. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

/** A local port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('deviceLabel', () => {
  test.each([
    ['Chrome on Windows', UA.chromeWindows],
    ['Safari on iPhone', UA.safariIphone],
    ['Safari on iPad', UA.safariIpad],
    ['Chrome on iPhone', UA.chromeIphone],
    ['Safari on macOS', UA.safariMac],
    ['Firefox on Linux', UA.firefoxLinux],
    ['Firefox on Linux', UA.firefoxUbuntu],
    ['Edge on macOS', UA.edgeMac],
    ['Edge on Windows', UA.edgeWindows],
    ['Chrome on Android', UA.chromeAndroid],
    ['Samsung Internet on Android', UA.samsungAndroid],
    ['Chrome on Chrome OS', UA.chromeOs],
  ])('%s', (label, userAgent) => {
    expect(deviceLabel(userAgent)).toBe(label);
  });

  test.each([
    ['empty', ''],
    ['blank', '   '],
    ['garbage', 'asdf qwer zxcv'],
    ['a command-line client', 'curl/8.5.0'],
    ['a crawler', UA.googlebot],
    ['markup', '<script>alert(1)</script>'],
    ['control characters', '\u0000\u0001\r\n'],
  ])('%s → Unknown browser', (_what, userAgent) => {
    expect(deviceLabel(userAgent)).toBe('Unknown browser');
  });

  test('a missing header is an unknown browser', () => {
    expect(deviceLabel(undefined)).toBe('Unknown browser');
    expect(deviceLabel(null)).toBe('Unknown browser');
  });

  test('names a client invents never reach the label', () => {
    // The parser's generic rule would take "Click-evil.example" from this as a browser name.
    expect(deviceLabel('Click-evil.example/1.0 (Windows NT 10.0; Win64; x64)')).toBe('Unknown browser on Windows');
  });

  test('a very long header is capped before parsing, quickly, and still labelled', () => {
    const long = `${UA.chromeWindows} ${'x'.repeat(1_000_000)}`;
    const started = Date.now();
    expect(deviceLabel(long)).toBe('Chrome on Windows');
    expect(deviceLabel('('.repeat(100_000))).toBe('Unknown browser');
    expect(deviceLabel('a/'.repeat(100_000))).toBe('Unknown browser');
    expect(Date.now() - started).toBeLessThan(1000);
    // What identifies a browser lies beyond the cap: not looked at.
    expect(deviceLabel(`${' '.repeat(MAX_USER_AGENT_LENGTH)}${UA.chromeWindows}`)).toBe('Unknown browser');
  });
});

describe('formatting', () => {
  test('times are UTC, spelled out, without seconds', () => {
    expect(formatUtc(AT)).toBe(AT_TEXT);
    expect(formatUtc(new Date('2027-01-05T03:07:00+09:00'))).toBe('4 January 2027 at 18:07 UTC');
    expect(formatUtc(new Date('not a date'))).toBe('an unknown time');
  });

  test('factors have everyday names', () => {
    expect(factorDisplayName('totp')).toBe('authenticator app');
    expect(factorDisplayName('email-otp')).toBe('email codes');
    expect(factorDisplayName('sms-otp')).toBe('text message codes');
    expect(factorDisplayName('webauthn')).toBe('passkey or security key');
    expect(factorDisplayName('recovery-codes')).toBe('recovery codes');
    expect(factorDisplayName('security-code')).toBe('security code');
    expect(factorDisplayName('smart-card')).toBe('smart card');
  });
});

describe('SecurityAlerts over SMTP', () => {
  let smtp: TestSmtpServer;
  let mailer: Mailer;
  let alerts: SecurityAlerts;
  let lines: Array<Record<string, unknown>>;

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
  });
  afterAll(async () => {
    await smtp.stop();
  });
  beforeEach(() => {
    const captured = capturingLogger();
    lines = captured.lines;
    mailer = new Mailer({ smtpUrl: smtp.url, from: FROM }, captured.log, undefined);
    alerts = new SecurityAlerts(mailer, captured.log, { issuer: `${ISSUER}/` });
  });
  afterEach(async () => {
    await alerts.idle();
    mailer.close();
  });

  const cases: Array<{ alert: SecurityAlert; subject: string; says: string[] }> = [
    { alert: { kind: 'new-device-sign-in' }, subject: 'New sign-in to your account', says: ['device or browser it has not been used from before'] },
    { alert: { kind: 'password-changed' }, subject: 'Your password was changed', says: ['password of your Gatehouse account was changed'] },
    { alert: { kind: 'password-reset' }, subject: 'Your password was reset', says: ['password of your Gatehouse account was reset'] },
    { alert: { kind: 'factor-added', factor: 'totp' }, subject: 'A sign-in method was added to your account', says: ['added to your Gatehouse account: authenticator app.'] },
    { alert: { kind: 'factor-removed', factor: 'webauthn' }, subject: 'A sign-in method was removed from your account', says: ['removed from your Gatehouse account: passkey or security key.'] },
    { alert: { kind: 'recovery-codes-regenerated' }, subject: 'New recovery codes were created for your account', says: ['previous recovery codes no longer work'] },
    {
      alert: { kind: 'account-locked', until: new Date('2026-11-23T14:20:00Z') },
      subject: 'Your account was temporarily locked',
      says: ['locked after too many unsuccessful sign-in attempts', 'unlocks by itself on 23 November 2026 at 14:20 UTC'],
    },
    { alert: { kind: 'trusted-device-added' }, subject: 'A device was remembered for your account', says: ['skips the second step'] },
  ];

  test.each(cases)('$alert.kind: "$subject" with what, when, where and what to do', async ({ alert, subject, says }) => {
    const to = `${alert.kind}@example.com`;
    const outcome = await alerts.send({ email: to, name: 'Jane Doe', userId: 'jdoe' }, alert, { at: AT, ip: '203.0.113.9', device: 'Chrome on Windows' });
    expect(outcome).toBe('sent');
    const mail = await smtp.waitFor(to);
    expect(mail.subject).toBe(subject);
    expect(mail.from).toBe('no-reply@gatehouse.test');
    for (const body of [mail.text, mail.html]) {
      expect(body).toContain('Hello Jane Doe,');
      for (const phrase of says) expect(body).toContain(phrase);
      expect(body).toContain(AT_TEXT);
      expect(body).toContain('203.0.113.9');
      expect(body).toContain('Chrome on Windows');
      expect(body).toMatch(/If (it was not you|you did not|they were not yours)/);
      expect(body).toContain('administrator');
      expect(body).toContain(RECOVER);
    }
    expect(mail.html).toContain(`<a href="${RECOVER}">`);
    expect(mail.text).not.toContain('<');
    // The log says which alert went out, never what it said.
    expect(JSON.stringify(lines)).not.toContain('203.0.113.9');
  });

  test('without a device label, it is derived from the User-Agent; missing facts read "unknown"', async () => {
    await alerts.send({ email: 'derived@example.com', name: 'Jane', userId: 'jane' }, { kind: 'password-changed' }, { at: AT, ip: '2001:db8::7', userAgent: UA.safariIphone });
    const derived = await smtp.waitFor('derived@example.com');
    expect(derived.text).toMatch(/Device: +Safari on iPhone/);
    expect(derived.text).toMatch(/IP address: +2001:db8::7/);

    await alerts.send({ email: 'bare@example.com', name: '', userId: 'bare' }, { kind: 'password-changed' }, { at: AT });
    const bare = await smtp.waitFor('bare@example.com');
    expect(bare.text).toMatch(/^Hello,/);
    expect(bare.text).toMatch(/IP address: +unknown/);
    expect(bare.text).toMatch(/Device: +unknown/);
  });

  test('an account without an email address gets nothing, and that is logged at debug', async () => {
    const before = smtp.received.length;
    for (const email of [null, undefined, '', '   ']) {
      await expect(alerts.send({ email, name: 'No Mail', userId: 'nomail' }, { kind: 'password-changed' }, { at: AT })).resolves.toBe('no-email');
    }
    alerts.sendInBackground({ name: 'No Mail', userId: 'nomail' }, { kind: 'new-device-sign-in' }, { at: AT });
    await alerts.idle();
    // Give a stray mail time to arrive, were one sent.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(smtp.received.length).toBe(before);
    const skipped = lines.filter((l) => l.msg === 'security alert not sent: the account has no email address');
    expect(skipped).toHaveLength(5);
    expect(skipped.every((l) => l.level === 20 && l.userId === 'nomail')).toBe(true);
  });

  test('values are escaped in HTML and kept to one line in text', async () => {
    const hostile = {
      name: '<script>alert("name")</script>\r\n\r\nClick https://evil.example now',
      device: '<img src=x onerror="alert(1)"> & "Chrome"\nLine two',
      ip: '<b>203.0.113.9</b>',
    };
    await alerts.send({ email: 'escape@example.com', name: hostile.name, userId: 'x' }, { kind: 'factor-added', factor: '<svg onload=alert(1)>' }, { at: AT, ip: hostile.ip, device: hostile.device });
    const mail = await smtp.waitFor('escape@example.com');
    expect(mail.html).not.toMatch(/<script|<img|<svg|<b>/);
    expect(mail.html).toContain('Hello &lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt; Click https://evil.example now,');
    expect(mail.html).toContain('&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; &#34;Chrome&#34; Line two');
    expect(mail.html).toContain('&lt;b&gt;203.0.113.9&lt;/b&gt;');
    expect(mail.html).toContain('&lt;svg onload=alert(1)&gt;');
    // Plain text is not HTML: shown as written, but no value adds lines of its own.
    expect(mail.text).toContain('Hello <script>alert("name")</script> Click https://evil.example now,');
    expect(mail.text).toMatch(/Device: +<img src=x onerror="alert\(1\)"> & "Chrome" Line two\n/);
  });

  test('the product name signs the mail and the words', async () => {
    const named = new SecurityAlerts(mailer, createLogger('silent'), { issuer: ISSUER, productName: 'Acme ID' });
    await named.send({ email: 'product@example.com', name: 'Jane', userId: 'jane' }, { kind: 'password-changed' }, { at: AT });
    const mail = await smtp.waitFor('product@example.com');
    expect(mail.text).toContain('The password of your Acme ID account was changed.');
    expect(mail.text).toMatch(/-- \nAcme ID\s*$/);
  });

  test('background sends finish by idle()', async () => {
    for (const n of [1, 2, 3]) {
      alerts.sendInBackground({ email: `bg${n}@example.com`, name: 'Jane', userId: 'jane' }, { kind: 'new-device-sign-in' }, { at: AT, ip: '198.51.100.1', device: 'Firefox on Linux' });
    }
    await alerts.idle();
    for (const n of [1, 2, 3]) expect(smtp.received.some((m) => m.to.includes(`bg${n}@example.com`))).toBe(true);
  });

  test('background sends beyond the limit are dropped with a warning, not queued', async () => {
    const captured = capturingLogger();
    const limited = new SecurityAlerts(mailer, captured.log, { issuer: ISSUER, maxPending: 1 });
    limited.sendInBackground({ email: 'first@example.com', name: 'A', userId: 'a' }, { kind: 'password-changed' }, { at: AT });
    limited.sendInBackground({ email: 'second@example.com', name: 'B', userId: 'b' }, { kind: 'password-changed' }, { at: AT });
    await limited.idle();
    await smtp.waitFor('first@example.com');
    expect(smtp.received.some((m) => m.to.includes('second@example.com'))).toBe(false);
    expect(captured.lines.some((l) => l.level === 40 && l.userId === 'b' && String(l.msg).includes('dropped'))).toBe(true);
  });
});

describe('SecurityAlerts when mail cannot go out', () => {
  test('an unreachable SMTP server is logged and swallowed, in the foreground and the background', async () => {
    const { log, lines } = capturingLogger();
    const mailer = new Mailer({ smtpUrl: `smtp://127.0.0.1:${await closedPort()}`, from: FROM }, log, undefined);
    const alerts = new SecurityAlerts(mailer, log, { issuer: ISSUER });
    try {
      const account = { email: 'unreachable@example.com', name: 'Jane', userId: 'jane' };
      await expect(alerts.send(account, { kind: 'account-locked', until: AT }, { at: AT, ip: '203.0.113.9', device: 'Chrome on Windows' })).resolves.toBe('failed');
      alerts.sendInBackground(account, { kind: 'new-device-sign-in' }, { at: AT, ip: '203.0.113.9' });
      await alerts.idle();
      const warnings = lines.filter((l) => l.msg === 'security alert could not be sent');
      expect(warnings.map((l) => l.alert)).toEqual(['account-locked', 'new-device-sign-in']);
      expect(warnings.every((l) => l.level === 40 && l.userId === 'jane')).toBe(true);
      // Nothing of the mail itself reaches the log.
      const logged = JSON.stringify(lines);
      for (const secret of ['203.0.113.9', 'Chrome on Windows', 'unreachable@example.com', '/recover', 'temporarily locked']) expect(logged).not.toContain(secret);
    } finally {
      mailer.close();
    }
  });

  test('a mailer that throws, rejects or is not configured never breaks the caller', async () => {
    const log = createLogger('silent');
    const throwing = new SecurityAlerts({ send: () => { throw new Error('boom'); } }, log, { issuer: ISSUER });
    const rejecting = new SecurityAlerts({ send: () => Promise.reject(new Error('boom')) }, log, { issuer: ISSUER });
    const unconfigured = new SecurityAlerts(new Mailer({ smtpUrl: null, from: FROM }, log, undefined), log, { issuer: ISSUER });
    const account = { email: 'jane@example.com', name: 'Jane', userId: 'jane' };
    for (const alerts of [throwing, rejecting, unconfigured]) {
      await expect(alerts.send(account, { kind: 'password-reset' }, { at: AT })).resolves.toBe('failed');
      alerts.sendInBackground(account, { kind: 'password-reset' }, { at: AT });
      await alerts.idle();
    }
    // Even nonsense from an untyped caller.
    await expect(throwing.send(null as never, { kind: 'nonsense' } as never, { at: AT })).resolves.toBe('failed');
    await expect(rejecting.send(account, { kind: 'nonsense' } as never, { at: AT })).resolves.toBe('failed');
  });
});
