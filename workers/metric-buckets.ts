/**
 * Histogram buckets (ms) for Portarium's metrics. Core's default for milliseconds stops at 10 s,
 * which cannot tell an approval that took an hour from one that took a day. The alert rules
 * (docs/observability/prometheus-rules.yml) compare against some of these bounds (`le="60000"`,
 * `le="300000"`): keep those in.
 */
const S = 1000;
const M = 60 * S;
const H = 60 * M;

export const HISTOGRAM_BUCKETS: Record<string, number[]> = {
  portarium_approval_wait: [10 * S, M, 5 * M, 15 * M, H, 4 * H, 12 * H, 24 * H, 72 * H],
  portarium_decision_to_dispatch: [50, 100, 250, 500, S, 2.5 * S, 5 * S, 10 * S, 30 * S, M, 5 * M],
  portarium_quota_wait: [100, S, 5 * S, 30 * S, M, 5 * M, 15 * M, H],
  portarium_deadline_overrun: [S, 5 * S, 30 * S, M, 5 * M, 15 * M, H, 4 * H],
  portarium_event_delivery_lag: [100, 500, S, 5 * S, 30 * S, M, 5 * M, 15 * M, H],
};
