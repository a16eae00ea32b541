/** The aggregate definitions live in libs/envelope so forensics can replay streams with them. */
export { apiKeyAggregate, clientAggregate, familyAggregate, subjectAggregate } from '@token-ledger/envelope';
