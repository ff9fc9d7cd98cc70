/**
 * A fake event subscriber: an Activepieces Catch Webhook trigger (`/api/v1/webhooks/{flowId}`, no
 * auth, `200 {}` with `x-webhook-id`; `404 {}` for a disabled flow, `410 {}` for an unknown one, per
 * shared/reference/runtime-contracts.md) that receives Portarium's CloudEvents. Tests switch it to
 * answer 503 or drop connections (down), or to refuse the flow (gone).
 */
import { randomUUID } from 'node:crypto';
import { HttpFake, type RecordedRequest, type Reply } from './http-fake';

export type SubscriberMode = 'up' | 'down' | 'hangUp' | 'gone' | 'disabled';

export class SubscriberFake extends HttpFake {
  mode: SubscriberMode = 'up';
  /** Answer the next n deliveries with 503, then `mode`. */
  failNext = 0;

  constructor(readonly flowId = 'flow-events') {
    super((req) => this.answer(req));
  }

  get webhookUrl(): string {
    return `${this.url}/api/v1/webhooks/${this.flowId}`;
  }

  /** Deliveries the flow accepted, in arrival order. */
  readonly accepted: RecordedRequest[] = [];

  private answer(req: RecordedRequest): Reply {
    if (!req.path.startsWith('/api/v1/webhooks/')) return { status: 404, body: {} };
    if (req.path !== `/api/v1/webhooks/${this.flowId}`) return { status: 410, body: {} };
    if (this.failNext > 0) {
      this.failNext--;
      return { status: 503, body: { message: 'Service Unavailable' } };
    }
    switch (this.mode) {
      case 'down':
        return { status: 503, body: { message: 'Service Unavailable' } };
      case 'hangUp':
        return { status: 200, hangUp: true };
      case 'gone':
        return { status: 410, body: {} };
      case 'disabled':
        return { status: 404, body: {} };
      default:
        this.accepted.push(req);
        return { status: 200, body: {}, headers: { 'x-webhook-id': randomUUID() } };
    }
  }

  /** CloudEvents received, as subscribers see them: structured bodies, or binary headers plus data. */
  events(): Record<string, unknown>[] {
    return this.accepted.map((r) => {
      if (String(r.headers['content-type']).startsWith('application/cloudevents+json')) return JSON.parse(r.text) as Record<string, unknown>;
      const attrs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r.headers)) if (k.startsWith('ce-')) attrs[k.slice(3)] = decodeURIComponent(String(v));
      return { ...attrs, datacontenttype: r.headers['content-type'], data: JSON.parse(r.text) };
    });
  }
}
