/**
 * The policy for new passwords: length, the blocklist of the 10,000 most common passwords, one
 * repeated character, the User ID and email name, optional composition rules, every problem at once,
 * and the configuration that sets it all (with a named field for each bad setting).
 */
import { ConfigError, loadConfig } from '../../src/config.js';
import { COMMON_PASSWORD_COUNT, commonPasswords, rankedCommonPasswords } from '../../src/factors/password/common-passwords.js';
import {
  assertPasswordStrength,
  NO_COMPOSITION_RULES,
  passwordProblems,
  WeakPasswordError,
  type CompositionRules,
  type PasswordRules,
} from '../../src/factors/password/password.js';

const DEFAULTS: PasswordRules = loadConfig({ env: { NODE_ENV: 'test' } }).password;
/** Rules with the shortest length the configuration allows, to reach the blocklist with short entries. */
const SHORT: PasswordRules = { minLength: 8, maxLength: 256 };
const COMMON = /^This password is too common: it is one of the 10,000 most used passwords/;
const problemsOf = (password: string, rules: PasswordRules = DEFAULTS) => passwordProblems(password, rules, { userId: 'someone', email: 'someone@example.com' });

test('the configured defaults: 12 characters at least, 256 at most, no composition rules', () => {
  expect(DEFAULTS).toMatchObject({ minLength: 12, maxLength: 256, composition: NO_COMPOSITION_RULES });
  expect(problemsOf('correct horse battery')).toEqual([]);
});

describe('length', () => {
  test('too short and too long, each with the number to act on', () => {
    expect(problemsOf('elevenchars')).toEqual(['Use at least 12 characters (this password has 11).']);
    expect(problemsOf('twelve chars')).toEqual([]);
    expect(problemsOf('x'.repeat(100) + 'y'.repeat(157))).toEqual(['Use at most 256 characters.']);
    expect(problemsOf('')).toEqual(['The password must not be empty.']);
  });

  test('counts characters, not UTF-16 units: an emoji is one character', () => {
    expect(problemsOf('🐴🔋📎'.repeat(3))).toEqual(['Use at least 12 characters (this password has 9).']);
    expect(problemsOf('🐴🔋📎'.repeat(4))).toEqual([]);
    expect(problemsOf('straße-öffnen')).toEqual([]);
  });
});

describe('the blocklist of the 10,000 most common passwords', () => {
  test('holds exactly the top 10,000 of the ranked list, lower-cased', () => {
    expect(COMMON_PASSWORD_COUNT).toBe(10_000);
    expect(commonPasswords().size).toBe(10_000);
    const ranked = rankedCommonPasswords();
    expect(ranked).toHaveLength(10_000);
    // The package ranks by frequency: the classics come first.
    expect(ranked.slice(0, 4)).toEqual(['123456', 'password', '12345678', 'qwerty']);
    expect(ranked.every((entry) => entry === entry.toLowerCase())).toBe(true);
  });

  test('a top-100 password is refused (with the length problem too when it is also short)', () => {
    expect(problemsOf('qwertyuiop', SHORT)).toEqual([expect.stringMatching(COMMON)]); // rank 23
    expect(problemsOf('qwertyuiop')).toEqual(['Use at least 12 characters (this password has 10).', expect.stringMatching(COMMON)]);
    // The top-10,000 entries the default 12-character minimum still lets through to the blocklist.
    for (const password of ['qwerty123456', '1qaz2wsx3edc', '123qweasdzxc', 'q1w2e3r4t5y6', 'qazwsxedcrfv']) {
      expect(problemsOf(password)).toEqual([expect.stringMatching(COMMON)]);
    }
  });

  test('entries near rank 10,000 are refused; the ones just beyond it are accepted', () => {
    // Ranks 9,991 and 10,000 (the last one kept) of @zxcvbn-ts/language-common 4.1's list…
    expect(problemsOf('21081990', SHORT)).toEqual([expect.stringMatching(COMMON)]);
    expect(problemsOf('24081990', SHORT)).toEqual([expect.stringMatching(COMMON)]);
    // …and ranks 10,001 and 10,002, the first ones left out.
    expect(problemsOf('25021983', SHORT)).toEqual([]);
    expect(problemsOf('25021984', SHORT)).toEqual([]);
    const ranked = rankedCommonPasswords();
    expect([ranked.indexOf('21081990'), ranked.indexOf('24081990'), ranked.indexOf('25021983')]).toEqual([9990, 9999, -1]);
  });

  test('in any letter case', () => {
    for (const password of ['QWERTY123456', 'Qwerty123456', 'qWeRtY123456']) {
      expect(problemsOf(password)).toEqual([expect.stringMatching(COMMON)]);
    }
    expect(problemsOf('PassWord', SHORT)).toEqual([expect.stringMatching(COMMON)]);
  });
});

test('one repeated character is refused, in any script', () => {
  expect(problemsOf('aaaaaaaaaaaaaa')).toEqual(['The password must not be one character repeated.']);
  expect(problemsOf('🔑'.repeat(12))).toEqual(['The password must not be one character repeated.']);
  expect(problemsOf('aaaaaaaaaaaab')).toEqual([]);
});

describe('personal details', () => {
  const rules = DEFAULTS;

  test('the User ID, in any letter case, anywhere in the password', () => {
    expect(passwordProblems('my JDoe password', rules, { userId: 'jdoe', email: 'jane@example.com' })).toEqual(['The password must not contain your User ID.']);
    expect(passwordProblems('jdoe-jdoe-jdoe', rules, { userId: 'JDoe' })).toEqual(['The password must not contain your User ID.']);
    expect(passwordProblems('my j-doe password', rules, { userId: 'jdoe' })).toEqual([]);
  });

  test("the email's name part when it has 3 characters or more", () => {
    expect(passwordProblems('I am JANE.DOE here', rules, { userId: 'jd42', email: 'Jane.Doe@example.com' })).toEqual([
      'The password must not contain the name part of your email address.',
    ]);
    // The domain alone is not personal, and a two-letter name part is not checked.
    expect(passwordProblems('example.com is mine', rules, { userId: 'jd42', email: 'jane@example.com' })).toEqual([]);
    expect(passwordProblems('jd jd jd jd jd', rules, { userId: 'someone', email: 'jd@example.com' })).toEqual([]);
  });

  test('both are reported, and once when the email name is the User ID', () => {
    expect(passwordProblems('jdoe and jane.doe', rules, { userId: 'jdoe', email: 'jane.doe@example.com' })).toEqual([
      'The password must not contain your User ID.',
      'The password must not contain the name part of your email address.',
    ]);
    expect(passwordProblems('jdoe-is-my-name', rules, { userId: 'jdoe', email: 'JDoe@example.com' })).toEqual(['The password must not contain your User ID.']);
  });

  test('the older list form still works', () => {
    expect(passwordProblems('my jdoe password', rules, ['jdoe', 'jane'])).toEqual(['The password must not contain your User ID or email address.']);
    expect(passwordProblems('my jd password!', rules, ['jd', ''])).toEqual([]);
  });
});

describe('composition rules', () => {
  const withComposition = (composition: Partial<CompositionRules>): PasswordRules => ({ ...DEFAULTS, composition: { ...NO_COMPOSITION_RULES, ...composition } });
  const LOWER = 'lower case only here';

  test('all off by default: a password of one class is fine', () => {
    expect(problemsOf('justlowercaseletters')).toEqual([]);
    expect(problemsOf('837461920573')).toEqual([]);
  });

  test.each([
    ['requireLowercase', 'ALL UPPER CASE HERE', 'Include a lower-case letter.', 'ALL UPPER CASE HERe'],
    ['requireUppercase', LOWER, 'Include an upper-case letter.', 'Lower case only here'],
    ['requireDigit', LOWER, 'Include a digit (0-9).', 'lower case only here 7'],
    ['requireSymbol', 'lowercaseonlyhere', 'Include a symbol: a character that is neither a letter nor a digit, such as a space or "-".', 'lowercase-onlyhere'],
  ] as const)('%s: refuses a password without it when on, accepts it when off', (rule, without, message, withIt) => {
    expect(problemsOf(without, withComposition({ [rule]: true }))).toEqual([message]);
    expect(problemsOf(withIt, withComposition({ [rule]: true }))).toEqual([]);
    expect(problemsOf(without, withComposition({ [rule]: false }))).toEqual([]);
  });

  test('minCharacterClasses counts lower-case, upper-case, digits and symbols', () => {
    const three = withComposition({ minCharacterClasses: 3 });
    expect(problemsOf('lowercase and spaces', three)).toEqual([
      'Use at least 3 of these kinds of character: lower-case letters, upper-case letters, digits, symbols (this password has 2).',
    ]);
    expect(problemsOf('Lowercase and spaces', three)).toEqual([]);
    expect(problemsOf('lowercase4andspaces', three)).toEqual([
      'Use at least 3 of these kinds of character: lower-case letters, upper-case letters, digits, symbols (this password has 2).',
    ]);
    expect(problemsOf('Lower-case 4 all', withComposition({ minCharacterClasses: 4 }))).toEqual([]);
    expect(problemsOf('lowercase and spaces', withComposition({ minCharacterClasses: 0 }))).toEqual([]);
  });

  test('letters without case count as lower-case', () => {
    expect(problemsOf('密码是一个很长的句子呢', withComposition({ requireLowercase: true }))).toEqual(['Use at least 12 characters (this password has 11).']);
    expect(problemsOf('密码是一个很长的句子呢吗', withComposition({ requireLowercase: true }))).toEqual([]);
  });
});

test('every problem at once; assertPasswordStrength throws them all in one WeakPasswordError', () => {
  const rules: PasswordRules = { ...DEFAULTS, composition: { ...NO_COMPOSITION_RULES, requireUppercase: true, requireSymbol: true } };
  const expected = [
    'Use at least 12 characters (this password has 8).',
    expect.stringMatching(COMMON),
    'The password must not contain your User ID.',
    'Include an upper-case letter.',
    'Include a symbol: a character that is neither a letter nor a digit, such as a space or "-".',
  ];
  expect(passwordProblems('password', rules, { userId: 'pass' })).toEqual(expected);
  let thrown: unknown;
  try {
    assertPasswordStrength('password', rules, { userId: 'pass' });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(WeakPasswordError);
  const weak = thrown as WeakPasswordError;
  expect(weak.problems).toEqual(expected);
  expect(weak.message).toBe(weak.problems.join(' '));
  expect(weak.message).toMatch(/^Use at least 12 characters/);
  expect(() => assertPasswordStrength('correct horse battery', rules, { userId: 'pass' })).toThrow(/Include an upper-case letter\./);
  expect(() => assertPasswordStrength('Correct horse battery', rules, { userId: 'pass' })).not.toThrow();
});

describe('configuration', () => {
  const problemsFor = (password: Record<string, unknown>): string => {
    try {
      loadConfig({ env: { NODE_ENV: 'test' }, overrides: { password } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.join('\n');
    }
    throw new Error('expected a ConfigError');
  };

  test('composition settings are read from the files and overrides', () => {
    const config = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { password: { minLength: 14, composition: { minCharacterClasses: 2, requireDigit: true } } } });
    expect(config.password).toMatchObject({
      minLength: 14,
      composition: { minCharacterClasses: 2, requireLowercase: false, requireUppercase: false, requireDigit: true, requireSymbol: false },
    });
  });

  test('each bad setting is named with what it must be', () => {
    expect(problemsFor({ minLength: 7 })).toMatch(/^password\.minLength: must be at least 8 \(the NIST SP 800-63B minimum\)$/m);
    expect(problemsFor({ minLength: 12.5 })).toMatch(/^password\.minLength:/m);
    expect(problemsFor({ minLength: 100, maxLength: 50 })).toMatch(/^password\.maxLength: must not be less than password\.minLength$/m);
    expect(problemsFor({ composition: { minCharacterClasses: 5 } })).toMatch(/^password\.composition\.minCharacterClasses: must be 0 \(off\) to 4/m);
    expect(problemsFor({ composition: { minCharacterClasses: -1 } })).toMatch(/^password\.composition\.minCharacterClasses: must be 0 \(off\) to 4/m);
    expect(problemsFor({ composition: { requireDigit: 'yes' } })).toMatch(/^password\.composition\.requireDigit: must be true or false$/m);
    // A misspelt rule is reported, not silently ignored.
    expect(problemsFor({ composition: { requireUpercase: true } })).toMatch(/^password\.composition: .*requireUpercase/m);
  });
});
