/**
 * Outgoing text messages through a pluggable gateway. Production uses the webhook gateway: a POST of
 * `{ to, text }` as JSON to a configured URL, so a Twilio-style or in-house sender can sit behind it.
 * Development without a webhook uses the console gateway (log + the last messages in memory for a dev
 * page). Production without a webhook refuses to send, with a message that says what to configure.
 * Message texts carry one-time codes, so nothing here logs them outside the console gateway.
 */
import type { Logger } from '../logger.js';

export interface SmsGateway {
  /** Delivers one message to an E.164 number. Throws if it cannot be handed over. */
  send(to: string, text: string): Promise<void>;
}

export interface SmsConfig {
  webhookUrl: string | null;
  webhookToken: string | null;
}

export class SmsDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmsDeliveryError';
  }
}

export interface WebhookSmsOptions {
  url: string;
  token: string | null;
  timeoutMs?: number;
}

export class WebhookSmsGateway implements SmsGateway {
  private readonly timeoutMs: number;

  constructor(
    private readonly options: WebhookSmsOptions,
    private readonly log: Logger,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async send(to: string, text: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response: Response;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ to, text }),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error', // a redirect would re-send the credential somewhere we did not configure
      });
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (err as Error).message;
      this.log.error({ reason }, 'SMS webhook unreachable');
      throw new SmsDeliveryError(`the SMS gateway could not be reached: ${reason}`);
    }
    // The body may echo the message (and its code): drain it, never log it.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) {
      this.log.error({ status: response.status }, 'SMS webhook refused the message');
      throw new SmsDeliveryError(`the SMS gateway answered HTTP ${response.status}`);
    }
    this.log.info('SMS handed to the webhook gateway');
  }
}

export interface SmsMessage {
  to: string;
  text: string;
  sentAt: Date;
}

/** Development only: prints each message and keeps the last few for a dev page, like DevMailbox. */
export class ConsoleSmsGateway implements SmsGateway {
  private readonly messages: SmsMessage[] = [];

  constructor(
    private readonly log: Logger,
    private readonly capacity = 50,
  ) {}

  async send(to: string, text: string): Promise<void> {
    this.messages.unshift({ to, text, sentAt: new Date() });
    this.messages.length = Math.min(this.messages.length, this.capacity);
    this.log.info({ to, text }, 'development SMS (no webhook configured)');
  }

  list(): readonly SmsMessage[] {
    return this.messages;
  }
}

/** Production without a webhook: every send fails and says what is missing. */
export class UnconfiguredSmsGateway implements SmsGateway {
  constructor(private readonly log: Logger) {}

  async send(): Promise<void> {
    this.log.error('no SMS gateway configured (sms.webhookUrl / SMS_WEBHOOK_URL): message not sent');
    throw new SmsDeliveryError('SMS delivery is not configured: set sms.webhookUrl (SMS_WEBHOOK_URL) and sms.webhookToken (SMS_WEBHOOK_TOKEN)');
  }
}

export function createSmsGateway(config: SmsConfig, env: 'development' | 'production' | 'test', log: Logger): SmsGateway {
  if (config.webhookUrl) return new WebhookSmsGateway({ url: config.webhookUrl, token: config.webhookToken }, log);
  return env === 'production' ? new UnconfiguredSmsGateway(log) : new ConsoleSmsGateway(log);
}
