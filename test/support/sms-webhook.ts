/** A local HTTP server playing the SMS gateway behind the webhook: it records every message posted. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSms {
  to: string;
  text: string;
  authorization: string | undefined;
}

export class TestSmsWebhook {
  readonly received: ReceivedSms[] = [];
  readonly token = 'sms-webhook-test-token';
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      try {
        const message = JSON.parse(body) as { to: string; text: string };
        this.received.push({ to: message.to, text: message.text, authorization: req.headers.authorization });
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"queued":true}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/sms`;
  }

  /** The newest message to `to`; fails if none arrived within the time limit. */
  async latest(to: string, after = 0, timeoutMs = 5000): Promise<ReceivedSms> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(after).filter((m) => m.to === to).at(-1);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no SMS to ${to}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
