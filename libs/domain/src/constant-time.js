"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.constantTimeEqual = constantTimeEqual;
/**
 * Compares two strings without an early exit, so the time taken does not reveal how long a common
 * prefix a forged hash shares with the stored one. Lengths are not secret (hashes have a fixed
 * length), so a length mismatch may return at once.
 */
function constantTimeEqual(a, b) {
    if (a.length !== b.length)
        return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++)
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    return diff === 0;
}
