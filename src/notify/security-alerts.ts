/**
 * Security notification mails: tell an account's owner, by email, that something happened to their
 * account — what, when (UTC), from where (IP address and device label) and what to do if it was not
 * them. Rendered from views/mail/security-alert.{text,html}.ejs through the shared Mailer; the words of
 * each kind of alert live here (COPY), the templates only lay them out.
 *
 * API
 *
 *   const alerts = new SecurityAlerts(mailer, log, { issuer: 'https://id.example.com', productName?: 'Gatehouse' });
 *
 *   await alerts.send(account, alert, facts): Promise<AlertOutcome>
 *     account  { email?: string | null; name: string; userId: string }   (a FactorSubject fits)
 *     alert    SecurityAlert, one of:
 *                { kind: 'new-device-sign-in' }        sign-in from a device or browser not seen before
 *                { kind: 'password-changed' }          the user changed it while signed in
 *                { kind: 'password-reset' }            set anew through recovery or by an administrator
 *                { kind: 'factor-added'; factor }      factor: a FactorName ('totp', 'webauthn', …)
 *                { kind: 'factor-removed'; factor }
 *                { kind: 'recovery-codes-regenerated' }
 *                { kind: 'account-locked'; until: Date }
 *                { kind: 'trusted-device-added' }      a device was remembered (skips the second step)
 *     facts    { at: Date; ip?: string; device?: string; userAgent?: string }
 *                device: a label such as deviceLabel() makes ("Chrome on Windows"); without one, it is
 *                derived from userAgent; without either, the mail says "unknown".
 *     → 'sent' | 'no-email' (skipped: the account has no address; logged at debug) |
 *       'failed' (the mail could not be rendered or delivered; logged at warn without the mail's content)
 *     It never throws and never rejects: an alert must never break the action it reports.
 *
 *   alerts.sendInBackground(account, alert, facts): void
 *     Starts the same send without waiting for it, for endpoints where waiting would slow the answer or
 *     reveal through its timing whether a mail went out (pre-authentication endpoints). At most
 *     `maxPending` (default 100) background sends run at once; beyond that, alerts are dropped with a
 *     warning rather than queued without limit.
 *
 *   await alerts.idle(): Promise<void>
 *     Resolves once every background send started so far (and any started meanwhile) has finished;
 *     for tests and for a graceful shutdown before the mailer is closed.
 *
 * Every value a mail shows is reduced to one line of printable characters and capped in length, so a
 * name, label or address cannot add lines of its own to the plain-text mail; the HTML template escapes
 * everything on top of that. "What to do if it was not you" always links <issuer>/recover (password
 * recovery) and names the user's administrator.
 */
import { deviceLabel } from '../http/user-agent.js';
import type { FactorName } from '../factors/types.js';
import type { Logger } from '../logger.js';
import type { Mailer } from './mailer.js';

export type SecurityAlert =
  | { kind: 'new-device-sign-in' }
  | { kind: 'password-changed' }
  | { kind: 'password-reset' }
  | { kind: 'factor-added'; factor: FactorName | (string & {}) }
  | { kind: 'factor-removed'; factor: FactorName | (string & {}) }
  | { kind: 'recovery-codes-regenerated' }
  | { kind: 'account-locked'; until: Date }
  | { kind: 'trusted-device-added' };

export type SecurityAlertKind = SecurityAlert['kind'];

export interface AlertRecipient {
  email?: string | null;
  name: string;
  userId: string;
}

export interface AlertFacts {
  /** When it happened. */
  at: Date;
  /** The client's IP address as the request saw it. */
  ip?: string;
  /** A device label ("Chrome on Windows"); wins over userAgent. */
  device?: string;
  /** The raw User-Agent header, turned into a label when no device label is given. */
  userAgent?: string;
}

export type AlertOutcome = 'sent' | 'no-email' | 'failed';

export interface SecurityAlertsOptions {
  /** The issuer URL; the recovery page is <issuer>/recover. */
  issuer: string;
  /** Signs the mails; "Gatehouse" unless given. */
  productName?: string;
  /** The most background sends in flight at once; further ones are dropped (and logged). Default 100. */
  maxPending?: number;
}

/** How each factor is called in a mail. */
const FACTOR_NAMES: Readonly<Record<string, string>> = {
  password: 'password',
  totp: 'authenticator app',
  'email-otp': 'email codes',
  'sms-otp': 'text message codes',
  webauthn: 'passkey or security key',
  'recovery-codes': 'recovery codes',
  'security-code': 'security code',
  'trusted-device': 'remembered device',
};

/** The friendly name of a factor; an unknown one is shown as its own name, tidied. */
export function factorDisplayName(factor: string): string {
  return FACTOR_NAMES[factor] ?? (oneLine(factor.replace(/[-_]+/g, ' '), 60) || 'sign-in method');
}

const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
];

/** "23 November 2026 at 14:05 UTC": unambiguous whatever the reader's locale. */
export function formatUtc(date: Date): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return 'an unknown time';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} at ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
}

/** One line of printable text, at most `max` characters: nothing a caller passes can add lines to a mail. */
function oneLine(value: unknown, max: number): string {
  if (typeof value !== 'string') return '';
  // Control characters (C0, DEL, C1) and Unicode line/paragraph separators and bidi controls become spaces.
  const flat = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1).trimEnd()}…` : flat;
}

/** What a mail of one kind says; the mail adds the facts and the link to the recovery page. */
interface Copy {
  subject: string;
  summary: string;
  detail?: string;
  ifYou: string;
  notYou: string;
}

function copyFor(alert: SecurityAlert, productName: string): Copy {
  switch (alert.kind) {
    case 'new-device-sign-in':
      return {
        subject: 'New sign-in to your account',
        summary: `Your ${productName} account was signed in to from a device or browser it has not been used from before.`,
        ifYou: 'If this was you, you do not need to do anything.',
        notYou: 'If it was not you, someone else may know your password. Reset your password now and contact your administrator.',
      };
    case 'password-changed':
      return {
        subject: 'Your password was changed',
        summary: `The password of your ${productName} account was changed. Every other browser and device signed in to it was signed out.`,
        ifYou: 'If you changed it, you do not need to do anything.',
        notYou: 'If you did not change it, someone else may have access to your account. Reset your password now and contact your administrator.',
      };
    case 'password-reset':
      return {
        subject: 'Your password was reset',
        summary: `The password of your ${productName} account was reset.`,
        ifYou: 'If you reset it, or asked for it to be reset, you do not need to do anything.',
        notYou: 'If you did not, someone else may have access to your account or to your email. Secure your email account, reset your password again, and contact your administrator.',
      };
    case 'factor-added': {
      const factor = factorDisplayName(alert.factor);
      return {
        subject: 'A sign-in method was added to your account',
        summary: `A sign-in method was added to your ${productName} account: ${factor}.`,
        ifYou: 'If you added it, you do not need to do anything.',
        notYou: 'If you did not add it, someone else may be able to sign in as you. Reset your password now and contact your administrator, who can remove it.',
      };
    }
    case 'factor-removed': {
      const factor = factorDisplayName(alert.factor);
      return {
        subject: 'A sign-in method was removed from your account',
        summary: `A sign-in method was removed from your ${productName} account: ${factor}.`,
        detail: 'It can no longer be used to sign in.',
        ifYou: 'If you removed it, you do not need to do anything.',
        notYou: 'If you did not remove it, someone else may have access to your account. Reset your password now and contact your administrator.',
      };
    }
    case 'recovery-codes-regenerated':
      return {
        subject: 'New recovery codes were created for your account',
        summary: `New recovery codes were created for your ${productName} account.`,
        detail: 'Your previous recovery codes no longer work.',
        ifYou: 'If you created them, keep them somewhere safe; you do not need to do anything else.',
        notYou: 'If you did not create them, someone else may have access to your account. Reset your password now and contact your administrator.',
      };
    case 'account-locked':
      return {
        subject: 'Your account was temporarily locked',
        summary: `Your ${productName} account was temporarily locked after too many unsuccessful sign-in attempts.`,
        detail: `It unlocks by itself on ${formatUtc(alert.until)}. Until then, nobody can sign in to it with its password, including you.`,
        ifYou: 'If these attempts were yours, wait until the lock ends and try again.',
        notYou: 'If they were not yours, someone may be trying to guess your password; the lock protects your account meanwhile. If your password could be known to someone else, reset it, and tell your administrator.',
      };
    case 'trusted-device-added':
      return {
        subject: 'A device was remembered for your account',
        summary: `A device or browser was remembered for your ${productName} account: signing in there skips the second step for a while.`,
        ifYou: 'If you chose to remember it, you do not need to do anything.',
        notYou: 'If you did not, someone else may be able to sign in as you. Reset your password now and contact your administrator, who can make your account forget remembered devices.',
      };
  }
}

export class SecurityAlerts {
  private readonly productName: string;
  private readonly recoverUrl: string;
  private readonly maxPending: number;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly mailer: Pick<Mailer, 'send'>,
    private readonly log: Logger,
    options: SecurityAlertsOptions,
  ) {
    this.productName = oneLine(options.productName, 60) || 'Gatehouse';
    this.recoverUrl = `${options.issuer.replace(/\/+$/, '')}/recover`;
    this.maxPending = options.maxPending ?? 100;
  }

  /** Sends one alert; never throws (see the header comment). */
  async send(account: AlertRecipient, alert: SecurityAlert, facts: AlertFacts): Promise<AlertOutcome> {
    const kind = alert?.kind;
    try {
      const email = typeof account.email === 'string' ? account.email.trim() : '';
      if (!email) {
        this.log.debug({ userId: account.userId, alert: kind }, 'security alert not sent: the account has no email address');
        return 'no-email';
      }
      const copy = copyFor(alert, this.productName);
      if (!copy) throw new Error(`unknown security alert kind ${String(kind)}`);
      const device = oneLine(facts.device, 100) || (facts.userAgent ? deviceLabel(facts.userAgent) : '');
      await this.mailer.send(email, copy.subject, 'security-alert', {
        name: oneLine(account.name, 100),
        summary: copy.summary,
        detail: copy.detail ?? '',
        when: formatUtc(facts.at),
        ip: oneLine(facts.ip, 64) || 'unknown',
        device: device || 'unknown',
        ifYou: copy.ifYou,
        notYou: copy.notYou,
        recoverUrl: this.recoverUrl,
        productName: this.productName,
      });
      return 'sent';
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.log.warn(
        { userId: account?.userId, alert: kind, err: { name: error.name, code: (error as { code?: unknown }).code, message: oneLine(error.message, 300) } },
        'security alert could not be sent',
      );
      return 'failed';
    }
  }

  /** Starts a send without waiting for it (see the header comment). */
  sendInBackground(account: AlertRecipient, alert: SecurityAlert, facts: AlertFacts): void {
    if (this.pending.size >= this.maxPending) {
      this.log.warn({ userId: account?.userId, alert: alert?.kind, pending: this.pending.size }, 'security alert dropped: too many alerts being sent at once');
      return;
    }
    const sending = Promise.resolve()
      .then(() => this.send(account, alert, facts))
      .finally(() => this.pending.delete(sending));
    this.pending.add(sending);
  }

  /** Resolves when no background send is in flight. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
