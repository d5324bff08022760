/**
 * A short, human label for the browser and system behind a User-Agent header ("Chrome on Windows",
 * "Safari on iPhone"), for security mails and the list of remembered devices.
 *
 * The header is chosen by the client, so the label is built only from names in the parser's own fixed
 * lists (bowser, MIT): whatever else the client writes never reaches a mail or a page. A bot or a
 * browser the parser does not know becomes "Unknown browser"; versions are left out, so the label of a
 * remembered device does not change with every browser update. Input is capped before parsing.
 */
import Bowser from 'bowser';

/** User-Agent headers are rarely longer than ~300 characters; the browser and system come first. */
export const MAX_USER_AGENT_LENGTH = 512;

export const UNKNOWN_BROWSER = 'Unknown browser';

/** The parser's names, shortened where the everyday name is shorter. */
const BROWSER_NAMES: Readonly<Record<string, string>> = {
  'Microsoft Edge': 'Edge',
  'Samsung Internet for Android': 'Samsung Internet',
  'NAVER Whale Browser': 'Whale',
  'WebOS Browser': 'webOS browser',
};

/** Names the parser can report that are crawlers, libraries or placeholders rather than browsers. */
const NOT_BROWSERS = new Set([
  'AmazonBot', 'BaiduSpider', 'BingCrawler', 'ChatGPT-User', 'ClaudeBot', 'Diffbot', 'DuckDuckBot',
  'FacebookExternalHit', 'Generic', 'Google Search', 'Googlebot', 'GPTBot', 'InternetArchiveCrawler',
  'Linespider', 'Meta-ExternalAds', 'Meta-ExternalAgent', 'Meta-ExternalFetcher', 'Meta-WebIndexer',
  'OAI-SearchBot', 'Omgilibot', 'PerplexityBot', 'Perplexity-User', 'PhantomJS', 'PingdomBot', 'SlackBot',
  'YahooSlurp', 'YandexBot', 'YouBot',
]);

const KNOWN_BROWSERS = new Set<string>(Object.values(Bowser.BROWSER_MAP as Record<string, string>));
const KNOWN_SYSTEMS = new Set<string>(Object.values(Bowser.OS_MAP as Record<string, string>));

function browserName(name: string | undefined): string | undefined {
  if (!name || !KNOWN_BROWSERS.has(name) || NOT_BROWSERS.has(name)) return undefined;
  return BROWSER_NAMES[name] ?? name;
}

/** On Apple's phones and tablets the device says more than "iOS". */
function systemName(os: string | undefined, userAgent: string): string | undefined {
  if (!os || !KNOWN_SYSTEMS.has(os)) return undefined;
  if (os === 'iOS') {
    const device = /\b(iPhone|iPad|iPod)\b/.exec(userAgent)?.[1];
    return device ?? 'iOS';
  }
  return os;
}

/**
 * "Chrome on Windows", "Safari on iPhone", "Firefox on Linux", "Edge on macOS"; "Chrome" or
 * "Unknown browser on Linux" when only one half is known; "Unknown browser" for an empty, missing,
 * unparseable or non-browser User-Agent. Never throws.
 */
export function deviceLabel(userAgent: string | null | undefined): string {
  if (typeof userAgent !== 'string') return UNKNOWN_BROWSER;
  const input = userAgent.slice(0, MAX_USER_AGENT_LENGTH).trim();
  if (!input) return UNKNOWN_BROWSER;
  let parsed: Bowser.Parser.ParsedResult;
  try {
    parsed = Bowser.parse(input);
  } catch {
    return UNKNOWN_BROWSER;
  }
  const browser = browserName(parsed.browser.name);
  const system = systemName(parsed.os.name, input);
  if (!browser && !system) return UNKNOWN_BROWSER;
  if (!system) return browser!;
  return `${browser ?? UNKNOWN_BROWSER} on ${system}`;
}
