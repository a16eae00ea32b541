import { Dispatcher, Pool } from 'undici';

/** application/x-www-form-urlencoded encoding of one value (WHATWG URL standard, as URLSearchParams). */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** RFC 6749 §2.3.1: client_id and secret are form-urlencoded, joined by ':', then base64. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

export function refreshBody(refreshToken: string): string {
  return `grant_type=refresh_token&refresh_token=${formEncode(refreshToken)}`;
}

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed body, or undefined when the body is not JSON. */
  json: unknown;
}

export async function requestJson(
  dispatcher: Dispatcher,
  options: {
    method: 'GET' | 'POST';
    path: string;
    headers?: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
  },
): Promise<JsonResponse> {
  const res = await dispatcher.request({
    method: options.method,
    path: options.path,
    headers: options.headers,
    body: options.body,
    signal: options.signal,
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/**
 * One request through undici's handler interface, the body gathered as text: what `request()` does
 * without a Readable stream, a promise per body read and an AbortSignal listener per request. The
 * load generator shares the machine's two cores with the server it measures (it took 15-20 % of a
 * core at 2,000 rotations/s through `request()`), so its own cost is kept small. `onAbortable` gets
 * the function that aborts this request (undici calls it again if it retries the request).
 */
export function dispatchText(
  dispatcher: Dispatcher,
  options: { method: 'GET' | 'POST'; path: string; headers?: Record<string, string>; body?: string },
  onAbortable?: (abort: (err?: Error) => void) => void,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let first: Buffer | undefined;
    let rest: Buffer[] | undefined;
    dispatcher.dispatch(options, {
      onConnect: (abort) => {
        first = rest = undefined;
        onAbortable?.(abort);
      },
      onHeaders: (statusCode) => {
        status = statusCode;
        return true;
      },
      onData: (chunk) => {
        if (first === undefined) first = chunk;
        else (rest ??= [first]).push(chunk);
        return true;
      },
      onComplete: () => resolve({ status, text: rest ? Buffer.concat(rest).toString() : first ? first.toString() : '' }),
      onError: reject,
    });
  });
}

export function jsonBody(value: unknown): { headers: Record<string, string>; body: string } {
  return { headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(value: unknown, field: string): string | undefined {
  if (!isRecord(value)) return undefined;
  const v = value[field];
  return typeof v === 'string' ? v : undefined;
}

/** Short description of a non-2xx answer for error messages. */
export function describeResponse(res: JsonResponse): string {
  const error = stringField(res.json, 'error');
  const description = stringField(res.json, 'error_description') ?? stringField(res.json, 'message');
  const detail = error ? `${error}${description ? `: ${description}` : ''}` : res.text.slice(0, 200);
  return `HTTP ${res.status}${detail ? ` ${detail}` : ''}`;
}

export function controlPool(origin: string): Pool {
  return new Pool(origin, { connections: 8, headersTimeout: 30_000, bodyTimeout: 30_000 });
}

/** Runs fn over 0..count-1 with at most `parallel` in flight; results in index order. */
export async function mapLimit<T>(count: number, parallel: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  });
  await Promise.all(workers);
  return results;
}
