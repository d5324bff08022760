/**
 * The sign-in users' accounts, each enrolled with an authenticator app (TOTP). A TOTP time step
 * (30 s) is accepted once per account: a code whose step is not later than the account's last accepted
 * one is refused as a replay. So the sign-in users take the accounts in turn, and an account is handed
 * out only when it is not signing in already and its last code's step is over. If every account has
 * been used in the current step, the next sign-in waits for the next step: that wait is counted (stalls)
 * and shows that the run needs more accounts (--accounts).
 */
import { generate } from 'otplib';
import type { Credentials } from './signin-driver.js';

export const TOTP_PERIOD_SECONDS = 30;

interface Slot {
  login: string;
  secret: string;
  /** The time step of the last code computed for this account (the previous step after enrolment). */
  lastStep: number;
  busy: boolean;
}

export interface Lease {
  credentials: Credentials;
  release(): void;
}

const stepAt = (ms: number) => Math.floor(ms / 1000 / TOTP_PERIOD_SECONDS);

export class TotpAccounts {
  private readonly slots: Slot[];
  private next = 0;
  /** Sign-ins that had to wait for the next time step because no account was free. */
  stalls = 0;

  constructor(
    logins: string[],
    secrets: Record<string, string>,
    private readonly password: string,
    now = Date.now(),
  ) {
    this.slots = logins.map((login) => {
      const secret = secrets[login];
      if (!secret) throw new Error(`no TOTP secret for ${login}`);
      return { login, secret, lastStep: stepAt(now) - 1, busy: false };
    });
    if (this.slots.length === 0) throw new Error('no accounts to sign in with');
  }

  /** An account that may sign in now, with a one-time-code source for its second-factor page. */
  async acquire(): Promise<Lease> {
    for (let waited = false; ; waited = true) {
      const step = stepAt(Date.now());
      for (let i = 0; i < this.slots.length; i++) {
        const slot = this.slots[(this.next + i) % this.slots.length]!;
        if (slot.busy || slot.lastStep >= step) continue;
        this.next = (this.next + i + 1) % this.slots.length;
        slot.busy = true;
        return { credentials: { login: slot.login, password: this.password, oneTimeCode: () => this.code(slot) }, release: () => (slot.busy = false) };
      }
      if (!waited) this.stalls++;
      const wait = (step + 1) * TOTP_PERIOD_SECONDS * 1000 - Date.now() + 5;
      await new Promise((resolve) => setTimeout(resolve, Math.max(5, Math.min(wait, 1000))));
    }
  }

  /** The code the account's app shows now; a step already used by this account would be refused, so never reuse it. */
  private async code(slot: Slot): Promise<string> {
    const now = Date.now();
    const step = stepAt(now);
    if (step <= slot.lastStep) throw new Error(`${slot.login} already used TOTP step ${slot.lastStep}`);
    slot.lastStep = step;
    return generate({ secret: slot.secret, epoch: Math.floor(now / 1000) });
  }

  /** Signs in with the next free account, releasing it afterwards. */
  async with<T>(run: (credentials: Credentials) => Promise<T>): Promise<T> {
    const lease = await this.acquire();
    try {
      return await run(lease.credentials);
    } finally {
      lease.release();
    }
  }
}
