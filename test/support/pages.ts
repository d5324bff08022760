/** Helpers for comparing pages byte for byte apart from what differs on every request. */
import type { Page } from './browser.js';

/** The body with the interaction id and every CSRF token blanked out. */
export function withoutPerRequestValues(page: Page): string {
  return page.body
    .replace(/\/interaction\/[\w-]+/g, '/interaction/X')
    .replace(/\/recover\?from=[\w-]+/g, '/recover?from=X') // the recovery link carries the interaction id
    .replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value="X"')
    .replace(/data-csrf="[^"]*"/g, 'data-csrf="X"');
}

/** Decodes the few HTML entities ejs writes for typographic quotes, so messages can be compared as text. */
export function pageText(body: string): string {
  return body.replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code))).replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}
