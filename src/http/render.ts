/**
 * Renders an ejs view from views/ outside of a Koa route (oidc-provider's own pages: errors,
 * logout). Routes use koa-views' ctx.render; both read the same templates.
 */
import path from 'node:path';
import ejs from 'ejs';
import { projectRoot } from '../config.js';

export const VIEWS_DIR = path.join(projectRoot, 'views');

export function renderView(name: string, locals: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(path.join(VIEWS_DIR, `${name}.ejs`), { title: 'Gatehouse', ...locals }, { async: false, cache: process.env.NODE_ENV === 'production' });
}
