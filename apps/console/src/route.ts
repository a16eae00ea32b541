/**
 * Hash routes, so every page and its query is a shareable link that works behind any server path:
 * `/console/#/search?subject=alice`, `#/family/fam_…?at=…`, `#/subject/alice`, `#/anomalies?status=open`.
 */

export interface Route {
  page: 'overview' | 'search' | 'family' | 'subject' | 'anomalies' | 'not-found';
  /** The family id or subject of the page, decoded. */
  id?: string;
  params: Record<string, string>;
}

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const [path, query = ''] = raw.split('?', 2) as [string, string?];
  const params: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) if (v !== '') params[k] = v;
  const parts = path.split('/').filter(Boolean);
  const decode = (s: string | undefined): string | undefined => {
    if (s === undefined) return undefined;
    try {
      return decodeURIComponent(s);
    } catch {
      return undefined;
    }
  };
  switch (parts[0]) {
    case undefined:
    case 'overview':
      return { page: 'overview', params };
    case 'search':
      return { page: 'search', params };
    case 'anomalies':
      return { page: 'anomalies', params };
    case 'family': {
      const id = decode(parts[1]);
      return id ? { page: 'family', id, params } : { page: 'not-found', params };
    }
    case 'subject': {
      const id = decode(parts.slice(1).join('/'));
      return id ? { page: 'subject', id, params } : { page: 'not-found', params };
    }
    default:
      return { page: 'not-found', params };
  }
}

/** The href of a page: `#/<path>?<query>`, empty values left out. */
export function href(path: string, params: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#/${path}${s ? `?${s}` : ''}`;
}

export const familyHref = (familyId: string, params: Record<string, string | undefined> = {}) => href(`family/${encodeURIComponent(familyId)}`, params);
export const subjectHref = (subject: string) => href(`subject/${encodeURIComponent(subject)}`);

/** Go to a route; `replace` for changes that should not pile up in history (the time slider). */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) {
    history.replaceState(history.state, '', to);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = to;
  }
}
