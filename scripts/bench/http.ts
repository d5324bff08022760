/**
 * A small HTTP/1.1 client for the bench's own requests (set-up checks and the sign-in driver): keep-alive
 * connections, a cookie jar with path matching and expiry, and loopback only — `localhost` is pinned to
 * 127.0.0.1 and any other host name is refused, so the bench cannot reach beyond this machine.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import http from 'node:http';

export interface HttpResponse {
  url: URL;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

function loopbackLookup(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  if (hostname !== 'localhost') {
    callback(Object.assign(new Error(`the bench only talks to loopback addresses, not "${hostname}"`), { code: 'ENOTFOUND' }), '');
    return;
  }
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export class HttpClient {
  private readonly agent: http.Agent;

  constructor(maxSockets: number) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, lookup: loopbackLookup });
  }

  request(url: URL, init: HttpRequest = {}): Promise<HttpResponse> {
    if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.has(url.hostname)) {
      return Promise.reject(new Error(`the bench only talks to http://localhost or 127.0.0.1, not ${url.origin}`));
    }
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
      const req = http.request(url, { method: init.method ?? 'GET', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ url, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url.pathname} within 30 s`)));
      req.on('error', reject);
      req.end(init.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/** One browser's cookies for one site (the bench talks to one origin per target). */
export class CookieJar {
  private readonly cookies = new Map<string, Cookie>();

  store(setCookie: string[] | undefined, requestUrl: URL): void {
    for (const line of setCookie ?? []) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // RFC 6265 5.1.4: without a Path attribute, the request path's "directory".
      let path = requestUrl.pathname.lastIndexOf('/') > 0 ? requestUrl.pathname.slice(0, requestUrl.pathname.lastIndexOf('/')) : '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key = '', ...rest] = attribute.split('=');
        const attrValue = rest.join('=').trim();
        switch (key.trim().toLowerCase()) {
          case 'path':
            if (attrValue.startsWith('/')) path = attrValue;
            break;
          case 'max-age':
            if (Number(attrValue) <= 0) expired = true;
            break;
          case 'expires': {
            const at = Date.parse(attrValue);
            if (!Number.isNaN(at) && at <= Date.now()) expired = true;
            break;
          }
        }
      }
      const key = `${path}\n${name}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  header(url: URL): string | undefined {
    const path = url.pathname;
    const matching = [...this.cookies.values()]
      .filter((c) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length > 0 ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

export function isRedirect(response: HttpResponse): boolean {
  return response.status >= 300 && response.status < 400 && typeof response.headers.location === 'string';
}

export function setCookieHeaders(response: HttpResponse): string[] | undefined {
  return response.headers['set-cookie'];
}
