/**
 * The account: who a person is (immutable opaque `accountId`, used as `sub`; the changeable login
 * `userId`), how to reach them, their status and grouping, and their password hash.
 */
import { Schema, type Connection, type HydratedDocument, type Model } from 'mongoose';
import { randomId } from '../crypto/ids.js';

export const ACCOUNT_STATUSES = ['active', 'disabled', 'locked'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

/** Second-factor enrolment state (the factors' own secrets live in the `credentials` collection). */
export interface MfaState {
  /** Set when the one-time 2FA enrolment was completed; until then policy may send the user to it. */
  enrolledAt?: Date | null;
  /** The OTP channel the user picked as default: challenged first at sign-in. */
  defaultMethod?: 'email-otp' | 'sms-otp' | 'totp' | 'webauthn' | null;
  /** How many times the user deferred enrolment (each one is audited too). */
  deferrals?: number;
}

export interface AccountFields {
  accountId: string;
  userId: string;
  userIdLower: string;
  email?: string | null;
  emailLower?: string | null;
  emailVerified: boolean;
  name: string;
  phone?: string | null;
  phoneVerified: boolean;
  status: AccountStatus;
  market: string;
  roles: string[];
  passwordHash?: string | null;
  passwordChangedAt?: Date | null;
  mfa?: MfaState | null;
  createdAt: Date;
  updatedAt: Date;
}

export type AccountDocument = HydratedDocument<AccountFields>;

/** 128 random bits, URL-safe: opaque, stable, and unrelated to anything the user can change. */
export function newAccountId(): string {
  return randomId(16);
}

const accountSchema = new Schema<AccountFields>(
  {
    accountId: { type: String, required: true, immutable: true, default: newAccountId },
    userId: { type: String, required: true, trim: true },
    userIdLower: { type: String, required: true },
    email: { type: String, default: null },
    emailLower: { type: String, default: undefined },
    emailVerified: { type: Boolean, default: false },
    name: { type: String, required: true, trim: true },
    phone: { type: String, default: null },
    phoneVerified: { type: Boolean, default: false },
    status: { type: String, enum: ACCOUNT_STATUSES, default: 'active' },
    market: { type: String, default: 'default' },
    roles: { type: [String], default: [] },
    passwordHash: { type: String, default: null },
    passwordChangedAt: { type: Date, default: null },
    mfa: {
      type: new Schema<MfaState>(
        {
          enrolledAt: { type: Date, default: null },
          defaultMethod: { type: String, enum: ['email-otp', 'sms-otp', 'totp', 'webauthn', null], default: null },
          deferrals: { type: Number, default: 0 },
        },
        { _id: false },
      ),
      default: () => ({}),
    },
  },
  { collection: 'accounts', timestamps: true, strict: 'throw' },
);

accountSchema.index({ accountId: 1 }, { unique: true, name: 'accountId_unique' });
accountSchema.index({ userIdLower: 1 }, { unique: true, name: 'userId_unique' });
accountSchema.index({ emailLower: 1 }, { unique: true, sparse: true, name: 'email_unique' });

// The lower-cased copies back the case-insensitive unique indexes; keep them in step.
accountSchema.pre('validate', function syncLowercase() {
  this.userIdLower = this.userId.toLowerCase();
  this.emailLower = this.email ? this.email.toLowerCase() : undefined;
});

export function accountModel(connection: Connection): Model<AccountFields> {
  return (connection.models.Account as Model<AccountFields> | undefined) ?? connection.model<AccountFields>('Account', accountSchema);
}
