"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.initialSubjectState = initialSubjectState;
exports.decideSubject = decideSubject;
exports.evolveSubject = evolveSubject;
const errors_1 = require("./errors");
const refresh_token_1 = require("./refresh-token");
const time_1 = require("./time");
/**
 * The subject stream serialises RevokeSubject against IssueToken: a family is linked here (with
 * optimistic concurrency) before it is issued, so RevokeSubject either sees the link and revokes
 * the family (pre-emptively if its stream does not exist yet), or the link comes after the
 * SubjectRevoked and belongs to a later login.
 */
function initialSubjectState(subject) {
    return { v: 1, subject, families: [] };
}
function decideSubject(command, state) {
    if (typeof command.subject !== 'string' || command.subject === '') {
        throw new errors_1.DomainError('invalid_argument', 'subject is required');
    }
    if (command.subject !== state.subject) {
        throw new errors_1.DomainError('subject_mismatch', 'command and state are for different subjects');
    }
    if (!Number.isSafeInteger(command.now) || command.now < 0) {
        throw new errors_1.DomainError('invalid_argument', 'now must be epoch milliseconds');
    }
    const occurredAt = (0, time_1.toIso)(command.now);
    switch (command.type) {
        case 'LinkFamily': {
            if (!(0, refresh_token_1.isFamilyId)(command.familyId))
                throw new errors_1.DomainError('invalid_argument', 'not a family id');
            if (typeof command.clientId !== 'string' || command.clientId === '') {
                throw new errors_1.DomainError('invalid_argument', 'clientId is required');
            }
            // Idempotent, so a retried issue does not list the family twice.
            if (state.families.some((f) => f.familyId === command.familyId))
                return { events: [] };
            const event = {
                type: 'FamilyLinkedToSubject',
                familyId: command.familyId,
                subject: command.subject,
                clientId: command.clientId,
                occurredAt,
                data: { familyId: command.familyId, clientId: command.clientId },
            };
            return { events: [event] };
        }
        case 'RevokeSubject': {
            if (typeof command.reason !== 'string' || command.reason === '') {
                throw new errors_1.DomainError('invalid_argument', 'reason is required');
            }
            // Always appended, even with no families: it is the audit record and the serialisation point.
            const event = {
                type: 'SubjectRevoked',
                familyId: '',
                subject: command.subject,
                clientId: '',
                occurredAt,
                data: { reason: command.reason, familyIds: state.families.map((f) => f.familyId) },
            };
            return {
                events: [event],
                familiesToRevoke: state.families.map((f) => ({ familyId: f.familyId, clientId: f.clientId })),
            };
        }
        default: {
            const never = command;
            throw new errors_1.DomainError('invalid_argument', `unknown command ${never.type}`);
        }
    }
}
function evolveSubject(state, event) {
    switch (event.type) {
        case 'FamilyLinkedToSubject':
            if (state.families.some((f) => f.familyId === event.data.familyId))
                return state;
            return {
                ...state,
                subject: event.subject,
                families: [
                    ...state.families,
                    { familyId: event.data.familyId, clientId: event.data.clientId, linkedAt: (0, time_1.fromIso)(event.occurredAt) },
                ],
            };
        case 'SubjectRevoked':
            // Families linked before this point have been handed to the caller for revocation.
            return { ...state, subject: event.subject, families: [] };
        default:
            return state;
    }
}
