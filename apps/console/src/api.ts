/**
 * The ledger's /v1 API as the console uses it. Every call carries the API key as a bearer token;
 * the key lives in session.ts and never in a URL.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

export interface Principal {
  keyId: string;
  name: string;
  scopes: string[];
  principal: string;
}

export interface RequestContext {
  ip?: string;
  userAgent?: string;
  deviceId?: string;
}

export interface Place {
  city: string | null;
  country: string | null;
  countryCode: string | null;
  latitude: number;
  longitude: number;
}

export interface LedgerEvent {
  eventId: string;
  type: string;
  familyId: string;
  subject: string;
  clientId: string;
  occurredAt: string;
  position: number;
  data: Record<string, any>;
  metadata: { actor?: string; context?: RequestContext; correlationId?: string; hash?: string; prevHash?: string | null };
  /** Timeline entries only: where the event's IP is (offline DB-IP lookup), or null. */
  place?: Place | null;
}

export interface FamilyView {
  familyId: string;
  subject: string;
  clientId: string;
  scope: string[];
  status: 'active' | 'revoked' | 'expired';
  generation: number;
  createdAt: string | null;
  lastUsedAt: string | null;
  idleExpiresAt: string | null;
  absoluteExpiresAt: string | null;
  revokedAt: string | null;
  revokedReason: string | null;
  lastContext: RequestContext | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Timeline {
  familyId: string;
  at: string;
  state: FamilyView | null;
  events: LedgerEvent[];
  nextCursor: string | null;
  attribution?: { text: string; url: string };
}

export interface Verification {
  familyId: string;
  status: 'ok' | 'broken' | 'unkeyed';
  checkedEvents: number;
  problemCount?: number;
  problems: { kind: string; revision: number; position: number | null; detail: string }[];
}

export type AnomalyStatus = 'open' | 'acknowledged' | 'dismissed';

export interface Anomaly {
  anomalyId: string;
  rule: string;
  severity: string;
  familyId: string | null;
  subject: string | null;
  detectedAt: string;
  evidence: unknown;
  action: string;
  status?: AnomalyStatus;
  statusBy?: string | null;
  statusAt?: string | null;
  statusNote?: string | null;
}

export interface TriageResult {
  anomalyId: string;
  status: AnomalyStatus;
  by: string;
  at: string;
}

export type Bucket = 'minute' | 'hour' | 'day';

export interface Overview {
  from: string;
  to: string;
  bucket: Bucket;
  series: { at: string; refreshes: number; reuseDetections: number; revocations: number; anomalies: number }[];
}

/** Query parameters: empty values are left out, so a URL's query can be passed through as is. */
export function queryString(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

const seg = encodeURIComponent;

/** Dispatched on window when the server refuses the key (revoked or expired meanwhile): sign out. */
export const UNAUTHORIZED_EVENT = 'token-ledger:unauthorized';

export class Api {
  constructor(
    private readonly key: string,
    private readonly base = '',
  ) {}

  /** fetch with the key; problem+json errors become ApiError. */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      signal,
      headers: { authorization: `Bearer ${this.key}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    if (!res.ok) {
      const title = json?.title ?? json?.error ?? res.statusText ?? 'Error';
      const detail = json?.detail ?? json?.error_description ?? '';
      throw new ApiError(res.status, String(title), String(detail));
    }
    return json as T;
  }

  /** The raw response, for the SSE stream (the caller reads the body). */
  stream(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    return fetch(`${this.base}${path}`, {
      headers: { authorization: `Bearer ${this.key}`, accept: 'text/event-stream', ...headers },
      signal,
      credentials: 'omit',
      cache: 'no-store',
    });
  }

  self(): Promise<Principal> {
    return this.request('GET', '/v1/api-keys/self');
  }
  audit(params: Record<string, string | undefined>, signal?: AbortSignal): Promise<Page<LedgerEvent>> {
    return this.request('GET', `/v1/audit${queryString(params)}`, undefined, signal);
  }
  family(id: string, signal?: AbortSignal): Promise<FamilyView> {
    return this.request('GET', `/v1/families/${seg(id)}`, undefined, signal);
  }
  timeline(id: string, at?: string, signal?: AbortSignal): Promise<Timeline> {
    return this.request('GET', `/v1/families/${seg(id)}/timeline${queryString({ at, limit: 10000 })}`, undefined, signal);
  }
  verification(id: string, signal?: AbortSignal): Promise<Verification> {
    return this.request('GET', `/v1/families/${seg(id)}/verification`, undefined, signal);
  }
  subjectFamilies(subject: string, cursor?: string, signal?: AbortSignal): Promise<Page<FamilyView>> {
    return this.request('GET', `/v1/subjects/${seg(subject)}/families${queryString({ cursor })}`, undefined, signal);
  }
  revokeFamily(id: string, reason: string): Promise<{ familyId: string; revoked: boolean; status: string; revokedReason: string | null }> {
    return this.request('POST', `/v1/families/${seg(id)}/revoke`, { reason });
  }
  revokeSubject(subject: string, reason: string): Promise<{ subject: string; revokedFamilies: string[] }> {
    return this.request('POST', `/v1/subjects/${seg(subject)}/revoke`, { reason });
  }
  anomalies(params: Record<string, string | undefined>, signal?: AbortSignal): Promise<Page<Anomaly>> {
    return this.request('GET', `/v1/anomalies${queryString(params)}`, undefined, signal);
  }
  triage(anomalyId: string, decision: 'acknowledge' | 'dismiss', note?: string): Promise<TriageResult> {
    return this.request('POST', `/v1/anomalies/${seg(anomalyId)}/${decision}`, note ? { note } : {});
  }
  overview(from: string, to: string, bucket: Bucket, signal?: AbortSignal): Promise<Overview> {
    return this.request('GET', `/v1/stats/overview${queryString({ from, to, bucket })}`, undefined, signal);
  }
}
