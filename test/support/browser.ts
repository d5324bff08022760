/**
 * A minimal browser for end-to-end tests: a cookie jar, manual redirects, and form posts, so the
 * sign-in and consent pages are submitted exactly as a browser would submit them.
 */
import { CookieJar } from 'tough-cookie';

export interface Page {
  url: string;
  status: number;
  body: string;
  headers: Headers;
}

export class Browser {
  readonly jar = new CookieJar();

  /** `userAgent` is sent with every request, as a real browser sends its own. */
  constructor(readonly options: { userAgent?: string } = {}) {}

  async request(url: string, init: { method?: string; form?: Record<string, string>; body?: string; headers?: Record<string, string> } = {}): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html', ...(this.options.userAgent ? { 'user-agent': this.options.userAgent } : {}), ...init.headers };
    const cookie = await this.jar.getCookieString(url);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined = init.body;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const response = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const setCookie of response.headers.getSetCookie()) await this.jar.setCookie(setCookie, url);
    return { url, status: response.status, body: await response.text(), headers: response.headers };
  }

  /** Follows redirects until `stop` says so (or a non-redirect page), returning the last page. */
  async follow(url: string, stop: (url: string) => boolean = () => false, init?: Parameters<Browser['request']>[1]): Promise<Page> {
    let page = await this.request(url, init);
    for (let hops = 0; hops < 20; hops++) {
      const location = page.headers.get('location');
      if (page.status < 300 || page.status >= 400 || !location) return page;
      const next = new URL(location, page.url).href;
      if (stop(next)) return { ...page, url: next };
      page = await this.request(next);
    }
    throw new Error('too many redirects');
  }

  /** Submits the first form whose action contains `actionPart`, with its hidden fields plus `fields`. */
  async submit(page: Page, actionPart: string, fields: Record<string, string> = {}, stop?: (url: string) => boolean): Promise<Page> {
    const form = findForm(page.body, actionPart);
    return this.follow(new URL(form.action, page.url).href, stop, { form: { ...form.hidden, ...fields } });
  }
}

export function findForm(html: string, actionPart: string): { action: string; hidden: Record<string, string> } {
  const forms = html.match(/<form[\s\S]*?<\/form>/g) ?? [];
  for (const form of forms) {
    const action = /action="([^"]*)"/.exec(form)?.[1];
    if (action === undefined || !action.includes(actionPart)) continue;
    const hidden: Record<string, string> = {};
    for (const input of form.match(/<input[^>]*type="hidden"[^>]*>/g) ?? []) {
      const name = /name="([^"]*)"/.exec(input)?.[1];
      const value = /value="([^"]*)"/.exec(input)?.[1] ?? '';
      if (name) hidden[name] = value.replace(/&#34;/g, '"').replace(/&amp;/g, '&');
    }
    return { action: action.replace(/&amp;/g, '&'), hidden };
  }
  throw new Error(`no form with action containing "${actionPart}" in:\n${html.slice(0, 2000)}`);
}
