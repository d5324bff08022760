/**
 * Work that must not show in a response's timing (mail for an account that exists, where an unknown one
 * gets none) starts once the response is out: when it closes. A client that already went away still
 * gets its work done: its 'close' has fired, so the work runs on the next turn instead.
 */
import type { ServerResponse } from 'node:http';

export function afterResponse(res: ServerResponse): (run: () => void) => void {
  return (run) => {
    if (res.closed || res.writableFinished) setImmediate(run);
    else res.once('close', run);
  };
}
