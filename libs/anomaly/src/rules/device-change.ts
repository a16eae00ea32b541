import type { Finding } from '../detection';

interface Device {
  deviceId?: string;
  userAgentFamily?: string;
}

/**
 * device_change: within a family, the device id changed, or the user-agent family (browser/client
 * and OS, see user-agent.ts) did. Only values known on both sides are compared.
 */
export function deviceChange(familyId: string, previous: Device, current: Device): Finding | undefined {
  const changes: Record<string, { from: string; to: string }> = {};
  if (previous.deviceId && current.deviceId && previous.deviceId !== current.deviceId) {
    changes.deviceId = { from: previous.deviceId, to: current.deviceId };
  }
  if (previous.userAgentFamily && current.userAgentFamily && previous.userAgentFamily !== current.userAgentFamily) {
    changes.userAgentFamily = { from: previous.userAgentFamily, to: current.userAgentFamily };
  }
  if (Object.keys(changes).length === 0) return undefined;
  return { rule: 'device_change', scope: 'family', scopeKey: familyId, evidence: changes };
}
