/** The aggregate definitions live in libs/envelope so forensics can replay streams with them. */
export { anomalyAggregate, apiKeyAggregate, clientAggregate, familyAggregate, ssfStreamAggregate, subjectAggregate } from '@token-ledger/envelope';
