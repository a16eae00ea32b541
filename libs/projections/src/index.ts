export * from './projection';
export * from './schema';
export * from './family-view';
export * from './audit-view';
export * from './anomaly-view';
export * from './projection-runner';
export * from './rebuild';
export { canRebuildInSql, rebuildInSql, SQL_REBUILDS } from './rebuild-in-sql';
export * from './queries';
export * from './overview';
export * from './ssf-streams';

import { anomalyProjection } from './anomaly-view';
import { auditProjection } from './audit-view';
import { familyProjection } from './family-view';

/** Every read model, in the order they are applied. */
export const ALL_PROJECTIONS = [familyProjection, auditProjection, anomalyProjection] as const;
export * from './projection-thread';
