/** The SMS gateways (webhook against a local HTTP server, console for development) and their config. */
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { ConsoleSmsGateway, createSmsGateway, SmsDeliveryError, UnconfiguredSmsGateway, WebhookSmsGateway } from '../../src/notify/sms.js';
import { capturingLogger, SmsWebhookReceiver } from './helpers.js';

let receiver: SmsWebhookReceiver;

beforeAll(async () => {
  receiver = await new SmsWebhookReceiver().start();
});
afterAll(() => receiver.stop());
beforeEach(() => {
  receiver.status = 202;
  receiver.delayMs = 0;
});

test('the webhook gateway POSTs { to, text } as JSON with the bearer credential, and logs neither', async () => {
  const { log, lines } = capturingLogger();
  const gateway = new WebhookSmsGateway({ url: receiver.url, token: 'webhook-token-123' }, log);
  await gateway.send('+14155550123', 'Gatehouse: 246810 is your sign-in code.');
  expect(receiver.received.at(-1)).toEqual({
    authorization: 'Bearer webhook-token-123',
    contentType: 'application/json',
    body: { to: '+14155550123', text: 'Gatehouse: 246810 is your sign-in code.' },
  });
  const logged = lines.join('\n');
  expect(logged).toContain('SMS handed to the webhook gateway');
  expect(logged).not.toContain('246810');
  expect(logged).not.toContain('webhook-token-123');
});

test('a non-2xx answer is an error that names the status, and the message is not logged', async () => {
  const { log, lines } = capturingLogger();
  receiver.status = 503;
  const gateway = new WebhookSmsGateway({ url: receiver.url, token: 't' }, log);
  await expect(gateway.send('+14155550123', 'code 135791')).rejects.toThrow(new SmsDeliveryError('the SMS gateway answered HTTP 503'));
  expect(lines.join('\n')).toContain('"status":503');
  expect(lines.join('\n')).not.toContain('135791');
});

test('a gateway that does not answer in time is an error', async () => {
  receiver.delayMs = 1000;
  const gateway = new WebhookSmsGateway({ url: receiver.url, token: null, timeoutMs: 100 }, createLogger('silent'));
  await expect(gateway.send('+14155550123', 'hello')).rejects.toThrow(/no answer within 100 ms/);
  expect(receiver.received.at(-1)?.authorization).toBeUndefined(); // no token configured: no header
});

test('an unreachable gateway is an error', async () => {
  const gateway = new WebhookSmsGateway({ url: 'http://127.0.0.1:9/sms', token: 't' }, createLogger('silent'));
  await expect(gateway.send('+14155550123', 'hello')).rejects.toThrow(/could not be reached/);
});

test('the console gateway logs each message and keeps the latest ones for a dev page', async () => {
  const { log, lines } = capturingLogger();
  const gateway = new ConsoleSmsGateway(log, 2);
  await gateway.send('+100000001', 'one');
  await gateway.send('+100000002', 'two');
  await gateway.send('+100000003', 'three');
  expect(gateway.list().map((m) => [m.to, m.text])).toEqual([
    ['+100000003', 'three'],
    ['+100000002', 'two'],
  ]);
  expect(lines.join('\n')).toContain('development SMS');
});

test('which gateway: the webhook when configured, the console in development, a clear error in production', async () => {
  const silent = createLogger('silent');
  expect(createSmsGateway({ webhookUrl: receiver.url, webhookToken: 't' }, 'production', silent)).toBeInstanceOf(WebhookSmsGateway);
  expect(createSmsGateway({ webhookUrl: null, webhookToken: null }, 'development', silent)).toBeInstanceOf(ConsoleSmsGateway);
  const production = createSmsGateway({ webhookUrl: null, webhookToken: null }, 'production', silent);
  expect(production).toBeInstanceOf(UnconfiguredSmsGateway);
  await expect(production.send('+14155550123', 'x')).rejects.toThrow(/SMS delivery is not configured: set sms.webhookUrl \(SMS_WEBHOOK_URL\)/);
});

test('configuration: sms.webhookUrl and sms.webhookToken, from the files or SMS_WEBHOOK_URL / SMS_WEBHOOK_TOKEN', () => {
  expect(loadConfig({ env: { NODE_ENV: 'test' } }).sms).toEqual({ webhookUrl: null, webhookToken: null });
  const config = loadConfig({ env: { NODE_ENV: 'test', SMS_WEBHOOK_URL: 'https://sms.internal/send', SMS_WEBHOOK_TOKEN: 'tok' } });
  expect(config.sms).toEqual({ webhookUrl: 'https://sms.internal/send', webhookToken: 'tok' });
  expect(() => loadConfig({ env: { NODE_ENV: 'test', SMS_WEBHOOK_URL: 'ftp://sms.internal' } })).toThrow(/sms\.webhookUrl/);
});
