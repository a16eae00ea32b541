/**
 * Stream naming, defined once: the command side writes these streams, and projections, forensics and
 * the anomaly engine read them back by the same names.
 */
export const FAMILY_STREAM_PREFIX = 'family-';
export const SUBJECT_STREAM_PREFIX = 'subject-';
export const CLIENT_STREAM_PREFIX = 'client-';
/** One stream per detected anomaly, appended with "no stream" so each is recorded once. */
export const ANOMALY_STREAM_PREFIX = 'anomaly-';

/** One stream per /v1 API key: created once, revoked at most once. */
export const API_KEY_STREAM_PREFIX = 'apikey-';

/** One stream per OpenID Shared Signals stream (its configuration, status and subjects). */
export const SSF_STREAM_PREFIX = 'ssf-stream-';

export const familyStreamId = (familyId: string): string => `${FAMILY_STREAM_PREFIX}${familyId}`;
export const subjectStreamId = (subject: string): string => `${SUBJECT_STREAM_PREFIX}${subject}`;
export const clientStreamId = (clientId: string): string => `${CLIENT_STREAM_PREFIX}${clientId}`;
export const anomalyStreamId = (anomalyId: string): string => `${ANOMALY_STREAM_PREFIX}${anomalyId}`;
export const apiKeyStreamId = (keyId: string): string => `${API_KEY_STREAM_PREFIX}${keyId}`;
export const ssfStreamId = (streamId: string): string => `${SSF_STREAM_PREFIX}${streamId}`;
