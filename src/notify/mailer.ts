/**
 * Outgoing mail: text + HTML rendered from views/mail/<template>.{text,html}.ejs and sent through
 * nodemailer over the SMTP server named by mail.smtpUrl. Without one (development, tests that do not
 * care), mails go to the log and to the in-memory dev mailbox shown at /dev/mailbox — never in
 * production, where a mail that cannot be sent is an error and its content is not logged.
 */
import path from 'node:path';
import ejs from 'ejs';
import nodemailer, { type Transporter } from 'nodemailer';
import { VIEWS_DIR } from '../http/render.js';
import type { Logger } from '../logger.js';

export interface MailConfig {
  smtpUrl: string | null;
  from: string;
}

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
  sentAt: Date;
}

/** The last few mails, for the development mailbox page. Bounded so it cannot grow without limit. */
export class DevMailbox {
  private readonly mails: Mail[] = [];
  constructor(private readonly capacity = 50) {}

  add(mail: Mail): void {
    this.mails.unshift(mail);
    this.mails.length = Math.min(this.mails.length, this.capacity);
  }

  list(): readonly Mail[] {
    return this.mails;
  }
}

export class Mailer {
  private readonly transport: Transporter | undefined;

  constructor(
    private readonly config: MailConfig,
    private readonly log: Logger,
    readonly devMailbox: DevMailbox | undefined,
  ) {
    this.transport = config.smtpUrl ? nodemailer.createTransport(config.smtpUrl) : undefined;
  }

  private async render(template: string, locals: Record<string, unknown>): Promise<{ text: string; html: string }> {
    const file = (kind: string) => path.join(VIEWS_DIR, 'mail', `${template}.${kind}.ejs`);
    const [text, html] = await Promise.all([
      // Plain text is not HTML: no entity escaping there.
      ejs.renderFile(file('text'), locals, { escape: (value: unknown) => String(value ?? '') }),
      ejs.renderFile(file('html'), locals),
    ]);
    return { text, html };
  }

  /** Renders and sends one mail. Throws if it cannot be delivered, so callers can tell the user. */
  async send(to: string, subject: string, template: string, locals: Record<string, unknown> = {}): Promise<void> {
    const { text, html } = await this.render(template, { subject, ...locals });
    if (this.transport) {
      await this.transport.sendMail({ from: this.config.from, to, subject, text, html });
      this.log.info({ template }, 'mail sent');
      return;
    }
    if (!this.devMailbox) {
      this.log.error({ template }, 'no SMTP server configured (mail.smtpUrl / SMTP_URL): mail not sent');
      throw new Error('mail delivery is not configured');
    }
    this.devMailbox.add({ to, subject, text, html, sentAt: new Date() });
    this.log.info({ to, subject, text }, 'development mail (no SMTP configured): see /dev/mailbox');
  }

  close(): void {
    this.transport?.close();
  }
}
