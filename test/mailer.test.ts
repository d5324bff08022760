/** The mailer against a real SMTP server, and the development mailbox without one. */
import { createLogger } from '../src/logger.js';
import { DevMailbox, Mailer } from '../src/notify/mailer.js';
import { TestSmtpServer } from './support/smtp.js';

const log = createLogger('silent');

test('sends text and HTML rendered from the templates, escaped, over SMTP', async () => {
  const smtp = await new TestSmtpServer().start();
  const mailer = new Mailer({ smtpUrl: smtp.url, from: 'Gatehouse <no-reply@gatehouse.test>' }, log, undefined);
  try {
    await mailer.send('jane@example.com', 'Test subject', 'test-message', { name: 'Jane <script>' });
    const mail = await smtp.waitFor('jane@example.com');
    expect(mail.subject).toBe('Test subject');
    expect(mail.from).toBe('no-reply@gatehouse.test');
    expect(mail.text).toContain('Hello Jane <script>,');
    expect(mail.html).toContain('Hello Jane &lt;script&gt;,');
  } finally {
    mailer.close();
    await smtp.stop();
  }
});

test('without SMTP, development mail lands in the dev mailbox; without a mailbox it is an error', async () => {
  const mailbox = new DevMailbox(2);
  const dev = new Mailer({ smtpUrl: null, from: 'x@y.z' }, log, mailbox);
  await dev.send('a@example.com', 'One', 'test-message', { name: 'A' });
  await dev.send('b@example.com', 'Two', 'test-message', { name: 'B' });
  await dev.send('c@example.com', 'Three', 'test-message', { name: 'C' });
  expect(mailbox.list().map((m) => m.subject)).toEqual(['Three', 'Two']);

  const production = new Mailer({ smtpUrl: null, from: 'x@y.z' }, log, undefined);
  await expect(production.send('a@example.com', 'One', 'test-message', { name: 'A' })).rejects.toThrow(/not configured/);
});
